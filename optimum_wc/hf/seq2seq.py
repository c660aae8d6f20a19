"""``OVModelForSeq2SeqLM``: optimum-intel's encoder-decoder for text2text generation (T5, BART and the like), with
the weights of its OpenVINO models (encoder, decoder) compressed by optimum-wc.

As in optimum-intel, one config applies to every OpenVINO model; a :class:`~optimum_wc.PipelineCompressionConfig`
(or optimum-intel's ``OVPipelineQuantizationConfig``) gives each its own. Calibration text is not taken yet (it is
refused before the export).
"""

from __future__ import annotations

from optimum_wc.errors import MissingExtraError

try:
    from optimum.intel import OVModelForSeq2SeqLM as _OptimumIntelSeq2SeqLM
except ModuleNotFoundError as missing:  # optimum-intel, transformers or torch: the `hf` extra
    raise MissingExtraError("OVModelForSeq2SeqLM", "hf", missing.name) from missing

from optimum_wc.hf.compressed import compressed_model

__all__ = ["OVModelForSeq2SeqLM"]


class OVModelForSeq2SeqLM(compressed_model(_OptimumIntelSeq2SeqLM)):
    """optimum-intel's ``OVModelForSeq2SeqLM`` whose weights are compressed by optimum-wc.

    Everything optimum-intel's class does (``generate``, the ``text2text-generation`` pipeline, reshape) works
    unchanged.
    """

    class_name = "OVModelForSeq2SeqLM"
