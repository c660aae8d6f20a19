"""What a compressed model records about itself in its rt_info.

nncf's entries (``nncf/weight_compression/...``, ``nncf/version``, ``nncf/friendly_names_were_updated``) are
written exactly as nncf 3.4.0 writes them, so that tools that look for them (optimum-intel's "already compressed"
check among them) see our models as nncf's. Our own section, ``optimum_wc``, adds our version and, per weight, the
mode, group size and bits that were applied (for SpQR also the bytes stored by part and the outlier count),
and the SpQR parameters.
"""

from __future__ import annotations

import json

import openvino as ov
from optimum_wc.config.settings import CompressionSettings
from optimum_wc.pipeline.planning import Plan, WeightPlan
from optimum_wc.version import NNCF_COMPATIBLE_VERSION, __version__


def write_rt_info(model: ov.Model, settings: CompressionSettings, plan: Plan) -> None:
    for key, value in settings.rt_info().items():
        model.set_rt_info(value, ["nncf", "weight_compression", *key.split("/")])
    model.set_rt_info(NNCF_COMPATIBLE_VERSION, ["nncf", "version"])
    model.set_rt_info("True", ["nncf", "friendly_names_were_updated"])
    model.set_rt_info(__version__, ["optimum_wc", "version"])
    layers = {w.target.constant_name: _record(w) for w in plan.to_compress}
    model.set_rt_info(json.dumps(layers, sort_keys=True), ["optimum_wc", "weights"])
    if settings.spqr is not None:
        for key, value in settings.spqr.to_dict().items():
            model.set_rt_info(str(value), ["optimum_wc", "spqr", key])


def _record(weight: WeightPlan) -> dict[str, object]:
    record = {
        "mode": weight.precision.mode.value,
        "group_size": weight.precision.group_size,
        "bits": weight.precision.bits,
        "shape": list(weight.target.shape),
    }
    if weight.spqr is not None:
        record.update(stored_bytes=weight.spqr.parts, outliers=weight.spqr.num_outliers)
    return record


def read_layer_records(model: ov.Model) -> dict[str, dict]:
    """Returns the per-weight records written by :func:`write_rt_info` (empty for other models)."""
    path = ["optimum_wc", "weights"]
    if not model.has_rt_info(path):
        return {}
    return json.loads(model.get_rt_info(path).value)


IMPORTED_KEY = ["optimum_wc", "imported"]  # where an imported GPTQ/AWQ checkpoint records its origin


def imported_origin(model: ov.Model) -> dict[str, str] | None:
    """What :func:`import_checkpoint` recorded in the rt_info, or None for other models."""
    if not model.has_rt_info(IMPORTED_KEY):
        return None
    keys = ("method", "bits", "group_size", "sym", "desc_act", "checkpoint_format", "source")
    return {
        key: str(model.get_rt_info([*IMPORTED_KEY, key]).value)
        for key in keys
        if model.has_rt_info([*IMPORTED_KEY, key])
    }
