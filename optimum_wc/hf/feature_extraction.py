"""``OVModelForFeatureExtraction``: optimum-intel's encoder for embeddings (BERT and the like), with weights
compressed by optimum-wc.

Data-free compression (8-bit, 4-bit, the other formats) goes through the same core as every model; calibration
text for an encoder (optimum-intel builds its inputs from a tokenized dataset) is not taken yet and is refused
before the export.
"""

from __future__ import annotations

from optimum_wc.errors import MissingExtraError

try:
    from optimum.intel import OVModelForFeatureExtraction as _OptimumIntelFeatureExtraction
except ModuleNotFoundError as missing:  # optimum-intel, transformers or torch: the `hf` extra
    raise MissingExtraError("OVModelForFeatureExtraction", "hf", missing.name) from missing

from optimum_wc.hf.compressed import compressed_model

__all__ = ["OVModelForFeatureExtraction"]


class OVModelForFeatureExtraction(compressed_model(_OptimumIntelFeatureExtraction)):
    """optimum-intel's ``OVModelForFeatureExtraction`` whose weights are compressed by optimum-wc.

    Everything optimum-intel's class does (the ``feature-extraction`` pipeline, reshape, compile) works unchanged.
    """

    class_name = "OVModelForFeatureExtraction"
