"""optimum-intel's diffusion pipelines (Stable Diffusion, SDXL, SD3, Flux, Sana, LCM, ...), with the weights of every
OpenVINO model of a pipeline (UNet or transformer, text encoders, VAE encoder and decoder) compressed by optimum-wc.

Each of optimum-intel's pipeline classes has one here of the same name, made from it by :func:`compressed_model`,
and so have its task classes (``OVPipelineForText2Image``, ...), which pick ours. As in optimum-intel, a config
applies to every OpenVINO model of the pipeline (a :class:`~optimum_wc.PipelineCompressionConfig` gives each its
own). A calibration dataset, which makes optimum-intel quantize the UNet's activations too (its hybrid mode), is
refused before the export, as is ``quant_method="hybrid"``.
"""

from __future__ import annotations

from typing import Any

from optimum_wc.errors import MissingExtraError, NotYetSupportedError

try:
    import diffusers  # noqa: F401 - optimum-intel's pipelines need it; named in the error when missing
    from optimum.intel.openvino import modeling_diffusion as _intel
except ModuleNotFoundError as missing:  # diffusers, optimum-intel, transformers or torch
    raise MissingExtraError("The diffusion pipelines", "diffusion", missing.name) from missing

from optimum_wc.config.pipeline import PipelineCompressionConfig, each_config
from optimum_wc.config.quantization import WeightCompressionConfig
from optimum_wc.hf.compressed import compressed_model


def _refuse_data(cls: type, config: WeightCompressionConfig | PipelineCompressionConfig) -> None:
    if any(each.dataset is not None for each in each_config(config)):
        raise NotYetSupportedError(
            f"{cls.class_name}: a calibration `dataset` makes optimum-intel quantize the activations of the "
            "pipeline's UNet or transformer too (its hybrid mode), which is not weight compression; drop `dataset` "
            "to compress the weights of every model data-free."
        )


def _pipeline_class(intel_class: type) -> type:
    """Ours for optimum-intel's pipeline class ``intel_class``, under its name (which optimum-intel reads, and
    diffusers writes in ``model_index.json``)."""
    base = compressed_model(intel_class)

    def _check_config(cls, config: WeightCompressionConfig | PipelineCompressionConfig) -> None:
        _refuse_data(cls, config)
        base._check_config.__func__(cls, config)

    def _adopt(cls, model: Any) -> Any:
        # the base class loads the pipeline class its model_index.json names: ours of that name
        model.__class__ = PIPELINES[type(model).__name__]
        return model

    members = {
        "class_name": intel_class.__name__,
        "_check_config": classmethod(_check_config),
        "_adopt": classmethod(_adopt),
        "__module__": __name__,
        "__doc__": f"optimum-intel's ``{intel_class.__name__}`` whose weights are compressed by optimum-wc.",
    }
    return type(intel_class.__name__, (base,), members)


def _pipeline_classes() -> dict[str, type]:
    """optimum-intel's diffusion pipeline classes, found in its module, base class first."""
    found = {"OVDiffusionPipeline": _intel.OVDiffusionPipeline}
    for name, value in vars(_intel).items():
        if isinstance(value, type) and issubclass(value, _intel.OVDiffusionPipeline) and name.startswith("OV"):
            found.setdefault(name, value)
    return found


PIPELINES = {name: _pipeline_class(intel_class) for name, intel_class in _pipeline_classes().items()}


class _TaskClass:
    """optimum-intel's task classes (``OVPipelineForText2Image``, ...): the pipeline class the saved model's
    ``model_index.json`` names for the task, ours of the same name."""

    intel_task_class: Any = None

    @classmethod
    def from_pretrained(cls, pretrained_model_or_path: Any, **kwargs: Any) -> Any:
        config = cls.intel_task_class.load_config(
            pretrained_model_or_path, **{k: kwargs[k] for k in ("cache_dir", "token", "revision") if k in kwargs}
        )
        config = config[0] if isinstance(config, tuple) else config
        intel_class = _intel._get_task_ov_class(cls.intel_task_class.ov_pipelines_mapping, config["_class_name"])
        return PIPELINES[intel_class.__name__].from_pretrained(pretrained_model_or_path, **kwargs)


TASKS = {
    name: type(name, (_TaskClass,), {"intel_task_class": getattr(_intel, name), "__module__": __name__})
    for name in vars(_intel)
    if name.startswith("OVPipelineFor") and hasattr(getattr(_intel, name), "ov_pipelines_mapping")
}

globals().update(PIPELINES)
globals().update(TASKS)
__all__ = [*PIPELINES, *TASKS]
