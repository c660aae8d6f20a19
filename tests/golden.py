"""Golden digests: what nncf 3.4.0 wrote for ten data-free configurations of one hand-built graph.

The parity tests compare with the installed nncf; these digests keep that oracle when nncf is upgraded or gone.
The graph is built from numpy's seeded generator (no torch, no export), so it is the same on every machine, and
data-free compression uses no BLAS product, so the bytes do not depend on the BLAS kernel either.

Regenerate (only with nncf 3.4.0 installed): ``python tests/golden.py``.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import sys
import tempfile

import numpy as np

import openvino as ov
from openvino import opset13 as opset
from parity import _graph_signature, _rt_info_entries

DIGESTS = pathlib.Path(__file__).resolve().parent / "data" / "golden_digests.json"
HIDDEN, FFN, ODD, VOCAB = 64, 160, 96, 512
CONFIGS = {
    "int8_asym": {},
    "int8_sym": {"mode": "int8_sym"},
    "int4_sym_g32": {"mode": "int4_sym", "group_size": 32},
    "int4_asym_g32_r0.8": {"mode": "int4_asym", "group_size": 32, "ratio": 0.8},
    "nf4_g32_all_layers": {"mode": "nf4", "group_size": 32, "all_layers": True},
    "int4_sym_per_channel_backup_none": {"mode": "int4_sym", "group_size": -1, "backup_mode": "none"},
    "int4_asym_g32_r0.6_int8_sym_ignored": {
        "mode": "int4_asym",
        "group_size": 32,
        "ratio": 0.6,
        "backup_mode": "int8_sym",
        "ignored_scope": {"patterns": [".*layer1.*up"]},
    },
    "int4_sym_g64_adjust": {"mode": "int4_sym", "group_size": 64, "group_size_fallback_mode": "adjust"},
    "int4_asym_g32_awq_data_free": {"mode": "int4_asym", "group_size": 32, "awq": True},
    "int8_asym_ignored_types": {"ignored_scope": {"types": ["Gather"]}},
}


def golden_model() -> ov.Model:
    """A two-layer decoder-like graph: an embedding, attention-like and MLP MatMuls of sizes on both sides of nncf's
    10000-element switch, projections whose 160 and 96 inputs a group of 64 does not divide, and a head."""
    rng = np.random.default_rng(2026)

    def weight(*shape: int) -> np.ndarray:
        return rng.normal(0, 0.05, size=shape).astype(np.float32)

    def linear(x, out: int, inp: int, name: str):
        return opset.matmul(x, opset.constant(weight(out, inp), name=f"{name}.weight"), False, True, name=name)

    ids = opset.parameter([1, -1], ov.Type.i64, name="input_ids")
    axis = opset.constant(np.int64(0), name="embed.axis")
    h = opset.gather(opset.constant(weight(VOCAB, HIDDEN), name="embed.weight"), ids, axis, name="embed")
    for i in range(2):
        q, k, v = (linear(h, HIDDEN, HIDDEN, f"layer{i}.{n}") for n in ("q", "k", "v"))
        h = opset.add(h, linear(opset.add(opset.multiply(q, k), v), HIDDEN, HIDDEN, f"layer{i}.o"))
        gate = opset.swish(linear(h, FFN, HIDDEN, f"layer{i}.gate"))
        h = opset.add(
            h, linear(opset.multiply(gate, linear(h, FFN, HIDDEN, f"layer{i}.up")), HIDDEN, FFN, f"layer{i}.down")
        )
    h = opset.add(h, linear(opset.relu(linear(h, ODD, HIDDEN, "odd.in")), HIDDEN, ODD, "odd.out"))
    return ov.Model([linear(h, VOCAB, HIDDEN, "lm_head")], [ids], "golden")


def arguments(config: dict, library: str) -> dict:
    """The ``compress_weights`` arguments of a config, with ``library``'s own parameter records."""
    if library == "nncf":
        import nncf as lib
    else:
        import optimum_wc as lib
    kwargs = {k: v for k, v in config.items() if k not in ("ignored_scope", "group_size_fallback_mode")}
    if "mode" in kwargs:
        kwargs["mode"] = lib.CompressWeightsMode(kwargs["mode"])
    if "backup_mode" in kwargs:
        kwargs["backup_mode"] = lib.BackupMode(kwargs["backup_mode"])
    if "ignored_scope" in config:
        kwargs["ignored_scope"] = lib.IgnoredScope(**config["ignored_scope"])
    if "group_size_fallback_mode" in config:
        fallback = lib.GroupSizeFallbackMode(config["group_size_fallback_mode"])
        kwargs["advanced_parameters"] = lib.AdvancedCompressionParameters(group_size_fallback_mode=fallback)
    return kwargs


def digest(model: ov.Model) -> dict[str, str]:
    """SHA-256 of the saved ``.bin``, of the graph (auto-generated names set aside, as the parity tests do) and of
    the nncf rt_info."""
    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / "model.xml"
        ov.save_model(model, path, compress_to_fp16=False)
        saved = ov.Core().read_model(path)
        data = path.with_suffix(".bin").read_bytes()
    graph = repr(_graph_signature(saved)).encode()
    rt_info = json.dumps(_rt_info_entries(saved, "nncf"), sort_keys=True).encode()
    return {
        part: hashlib.sha256(blob).hexdigest() for part, blob in (("bin", data), ("graph", graph), ("rt_info", rt_info))
    }


def write_digests() -> None:
    import nncf

    if nncf.__version__ != "3.4.0":
        sys.exit(f"The golden digests are nncf 3.4.0's; this is nncf {nncf.__version__}.")
    table = {"nncf": nncf.__version__, "input": digest(golden_model())}
    for name, config in CONFIGS.items():
        table[name] = digest(nncf.compress_weights(golden_model(), **arguments(config, "nncf")))
    DIGESTS.write_text(json.dumps(table, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    write_digests()
