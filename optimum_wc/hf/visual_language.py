"""``OVModelForVisualCausalLM``: optimum-intel's vision-language models (LLaVA, Qwen2-VL, ...), with the weights of
their OpenVINO models (language model, text embeddings, vision embeddings, ...) compressed by optimum-wc.

As in optimum-intel, a plain config applies to the language model (and a multi-token-prediction head, which is as
large), and every other OpenVINO model is compressed to INT8_SYM per channel; a
:class:`~optimum_wc.PipelineCompressionConfig` gives each its own. Calibration with images is not taken yet (it is
refused before the export).
"""

from __future__ import annotations

from optimum_wc.errors import MissingExtraError

try:
    from optimum.intel import OVModelForVisualCausalLM as _OptimumIntelVisualCausalLM
except ModuleNotFoundError as missing:  # optimum-intel, transformers or torch: the `hf` extra
    raise MissingExtraError("OVModelForVisualCausalLM", "hf", missing.name) from missing

from optimum_wc.config.pipeline import PipelineCompressionConfig
from optimum_wc.config.quantization import WeightCompressionConfig
from optimum_wc.hf.compressed import compressed_model

__all__ = ["OVModelForVisualCausalLM"]

LANGUAGE_MODELS = ("lm_model", "mtp_model")  # the OpenVINO models that take the config asked for


class OVModelForVisualCausalLM(compressed_model(_OptimumIntelVisualCausalLM)):
    """optimum-intel's ``OVModelForVisualCausalLM`` whose weights are compressed by optimum-wc.

    Everything optimum-intel's class does (``generate`` with a processor's inputs, the ``image-text-to-text``
    pipeline) works unchanged.
    """

    class_name = "OVModelForVisualCausalLM"
    # optimum-intel exports a VLM it compresses as it exports one it leaves alone (a 16-bit checkpoint in 16 bits),
    # and in fp32 only when told no compression follows
    export_load_in_8bit = None

    def _model_configs(
        self, config: WeightCompressionConfig | PipelineCompressionConfig
    ) -> dict[str, WeightCompressionConfig]:
        if isinstance(config, PipelineCompressionConfig):
            return super()._model_configs(config)
        others = WeightCompressionConfig(bits=8, sym=True)
        return {name: config if name in LANGUAGE_MODELS else others for name in self._wc_models()}
