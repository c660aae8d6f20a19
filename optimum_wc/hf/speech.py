"""``OVModelForSpeechSeq2Seq``: optimum-intel's speech-to-text encoder-decoders (Whisper and the like), with the
weights of their OpenVINO models (encoder, decoder) compressed by optimum-wc.

As in optimum-intel, one config applies to every OpenVINO model; a :class:`~optimum_wc.PipelineCompressionConfig`
gives each its own. Calibration with audio is not taken yet (it is refused before the export).
"""

from __future__ import annotations

from optimum_wc.errors import MissingExtraError

try:
    from optimum.intel import OVModelForSpeechSeq2Seq as _OptimumIntelSpeechSeq2Seq
except ModuleNotFoundError as missing:  # optimum-intel, transformers or torch: the `hf` extra
    raise MissingExtraError("OVModelForSpeechSeq2Seq", "hf", missing.name) from missing

from optimum_wc.hf.compressed import compressed_model

__all__ = ["OVModelForSpeechSeq2Seq"]


class OVModelForSpeechSeq2Seq(compressed_model(_OptimumIntelSpeechSeq2Seq)):
    """optimum-intel's ``OVModelForSpeechSeq2Seq`` whose weights are compressed by optimum-wc; ``generate`` and
    the ``automatic-speech-recognition`` pipeline work unchanged."""

    class_name = "OVModelForSpeechSeq2Seq"
