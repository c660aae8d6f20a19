"""optimum-wc: NNCF-compatible weight compression for OpenVINO models, with our own numpy kernels."""

from optimum_wc.compress import CompressionResult, compress_model, compress_weights
from optimum_wc.config.advanced import (
    AdvancedAdaptiveCodebookParameters,
    AdvancedAWQParameters,
    AdvancedCompressionParameters,
    AdvancedGPTQParameters,
    AdvancedLoraCorrectionParameters,
    AdvancedScaleEstimationParameters,
)
from optimum_wc.config.enums import (
    BackupMode,
    CompressionFormat,
    CompressWeightsMode,
    GroupSizeFallbackMode,
    SensitivityMetric,
)
from optimum_wc.config.pipeline import PipelineCompressionConfig
from optimum_wc.config.quantization import WeightCompressionConfig
from optimum_wc.config.scope import IgnoredScope, Subgraph
from optimum_wc.config.settings import CompressionSettings, LayerPrecision
from optimum_wc.config.spqr import SpQRConfig
from optimum_wc.errors import (
    CorruptModelError,
    HubUploadError,
    InternalError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    InvalidGroupSizeError,
    MissingExtraError,
    ModelNotFoundError,
    NonFiniteWeightError,
    NotYetSupportedError,
    OptimumWCError,
    OutputFolderError,
    ParameterNotSupportedError,
    UnsupportedArgumentError,
    UnsupportedModelError,
    ValidationError,
)
from optimum_wc.pipeline.summary import CompressionSummary
from optimum_wc.version import __version__

__all__ = [
    "SpQRConfig",
    "AdvancedAWQParameters",
    "AdvancedAdaptiveCodebookParameters",
    "AdvancedCompressionParameters",
    "AdvancedGPTQParameters",
    "AdvancedLoraCorrectionParameters",
    "AdvancedScaleEstimationParameters",
    "BackupMode",
    "CompressWeightsMode",
    "CompressionFormat",
    "CompressionResult",
    "CompressionSettings",
    "CompressionSummary",
    "CorruptModelError",
    "HubUploadError",
    "GroupSizeFallbackMode",
    "IgnoredScope",
    "InvalidArgumentError",
    "InvalidArgumentTypeError",
    "InternalError",
    "InvalidGroupSizeError",
    "LayerPrecision",
    "MissingExtraError",
    "ModelNotFoundError",
    "NonFiniteWeightError",
    "NotYetSupportedError",
    "OptimumWCError",
    "OutputFolderError",
    "ParameterNotSupportedError",
    "SensitivityMetric",
    "Subgraph",
    "UnsupportedArgumentError",
    "UnsupportedModelError",
    "ValidationError",
    "WeightCompressionConfig",
    "__version__",
    "compress_model",
    "compress_weights",
    "OVModelForCausalLM",
    "OVModelForFeatureExtraction",
    "OVModelForSeq2SeqLM",
    "OVModelForSpeechSeq2Seq",
    "OVModelForVisualCausalLM",
    "OVQuantizer",
    "OVConfig",
    "OVWeightQuantizationConfig",
    "OVPipelineQuantizationConfig",
    "PipelineCompressionConfig",
]


# The Hugging Face classes import optimum-intel (and with it torch): only on first use, and only with the `hf` extra
# installed (each module says which). Name -> the module that defines it.
LAZY = {
    "OVModelForCausalLM": "optimum_wc.hf.modeling",
    "OVModelForFeatureExtraction": "optimum_wc.hf.feature_extraction",
    "OVModelForSeq2SeqLM": "optimum_wc.hf.seq2seq",
    "OVModelForSpeechSeq2Seq": "optimum_wc.hf.speech",
    "OVModelForVisualCausalLM": "optimum_wc.hf.visual_language",
    "OVQuantizer": "optimum_wc.hf.quantizer",
    "OVConfig": "optimum_wc.hf.quantizer",
    "OVWeightQuantizationConfig": "optimum_wc.config.quantization",  # optimum-intel's name and argument order
    "OVPipelineQuantizationConfig": "optimum_wc.config.pipeline",
}


DIFFUSION = "optimum_wc.hf.diffusion"  # optimum-intel's diffusion pipeline and task classes, under their names


def _is_diffusion_name(name: str) -> bool:
    return name.startswith("OV") and (name.endswith("Pipeline") or name.startswith("OVPipelineFor"))


def __getattr__(name: str):
    import importlib

    if name in LAZY:
        return getattr(importlib.import_module(LAZY[name]), name)
    if _is_diffusion_name(name):
        found = getattr(importlib.import_module(DIFFUSION), name, None)
        if found is not None:
            return found
    raise AttributeError(f"module 'optimum_wc' has no attribute {name!r}")
