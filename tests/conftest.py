"""Shared fixtures: tiny random models exported once per test run, and nncf's reference runs."""

from __future__ import annotations

import os
import pathlib
import sys

import pytest

import openvino as ov

sys.path.insert(0, str(pathlib.Path(__file__).parent))

from tiny_models import ARCHITECTURES, export_cached  # noqa: E402

# Tests whose outcome rests on numpy's BLAS products (data-aware parity with nncf, the algorithms' numerics, BLAS
# threads): marked ``blas``, so that .ci/run runs them again under other OpenBLAS kernels.
BLAS_SENSITIVE = (
    "algorithms/",
    "test_data_aware.py",
    "test_layerwise_steps.py",
    "test_compress_data_aware.py",
    "test_compress_experts.py",
    "test_layer_inputs.py",
    "test_parallel.py",
    "test_modeling.py::test_text_calibration",
    "test_compress_parity_formats.py::test_data_aware",
    "test_compress_lora.py::test_identical_to_nncf[",  # the pairwise rows run under the machine's kernel only
    "test_compress_adaptive_codebook.py::test_identical_to_nncf[",
)


def pytest_collection_modifyitems(items):
    for item in items:
        where = pathlib.Path(item.nodeid.split("::")[0]).relative_to("tests").as_posix() + "::" + item.name
        if any(part in where for part in BLAS_SENSITIVE):
            item.add_marker(pytest.mark.blas)


@pytest.fixture(scope="session")
def export_root(tmp_path_factory) -> pathlib.Path:
    """Where exports are cached: $OPTIMUM_WC_TEST_CACHE if set (reused across runs), else a per-run folder."""
    root = os.environ.get("OPTIMUM_WC_TEST_CACHE")
    return pathlib.Path(root) if root else tmp_path_factory.mktemp("exports")


@pytest.fixture(scope="session")
def tiny_ir(export_root):
    """``tiny_ir(arch)`` -> path of the f32 IR of a tiny random model (exported on first use)."""

    def get(arch: str) -> pathlib.Path:
        if arch == "llama-fp16":
            return _fp16_copy(export_cached("llama", export_root), export_root / "llama-fp16")
        return export_cached(arch, export_root)  # an ARCHITECTURES or EXTRA_ARCHITECTURES name

    return get


def _fp16_copy(xml: pathlib.Path, out_dir: pathlib.Path) -> pathlib.Path:
    """The same model saved with f16 weight constants followed by Converts, as optimum-intel saves by default."""
    target = out_dir / xml.name
    if not target.is_file():
        out_dir.mkdir(parents=True, exist_ok=True)
        ov.save_model(ov.Core().read_model(xml), target, compress_to_fp16=True)
    return target


@pytest.fixture(params=sorted(ARCHITECTURES))
def arch(request) -> str:
    return request.param
