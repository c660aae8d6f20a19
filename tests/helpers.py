"""Helpers the test modules share (tests import this module, never each other)."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import textwrap

import numpy as np

import openvino as ov

REPO = pathlib.Path(__file__).resolve().parents[1]
EMBEDDED = REPO / "models" / "tiny-llama-pydoc"  # the trained tiny Llama the repository ships
SHARED = REPO.parent / "shared"
# The first non-empty lines of shared/data/pydoc/calibration.txt (Python 3.11 documentation, PSF licence), kept in
# the repository so that the calibration tests also run in a checkout without ../shared.
PYDOC_CALIBRATION = (
    SHARED / "data" / "pydoc" / "calibration.txt"
    if (SHARED / "data" / "pydoc" / "calibration.txt").is_file()
    else REPO / "tests" / "data" / "pydoc_calibration_head.txt"
)
F32 = {"INFERENCE_PRECISION_HINT": "f32"}  # OpenVINO CPU in float32, for comparisons of logits
HF_SIDE = ("optimum", "transformers", "torch", "datasets", "accelerate", "matplotlib", "nncf", "huggingface_hub")
EXACT_CPU = {**F32, "DYNAMIC_QUANTIZATION_GROUP_SIZE": "0"}  # and no dynamic quantization of activations


def calibration_items(count: int = 8, seed: int = 0) -> list[dict]:
    """``count`` random token items of 4-15 tokens for the tiny exported LMs."""
    rng = np.random.default_rng(seed)
    items = []
    for _ in range(count):
        length = int(rng.integers(4, 16))
        ids = rng.integers(3, 500, size=(1, length))
        items.append(
            {
                "input_ids": ids,
                "attention_mask": np.ones_like(ids),
                "position_ids": np.arange(length)[None],
                "beam_idx": np.zeros(1, dtype=np.int32),
            }
        )
    return items


def nncf_kwargs(kwargs: dict) -> dict:
    """The same arguments with nncf's own enum members."""
    import nncf

    converted = dict(kwargs)
    if "mode" in converted:
        converted["mode"] = nncf.CompressWeightsMode(converted["mode"])
    if "backup_mode" in converted:
        converted["backup_mode"] = nncf.BackupMode(converted["backup_mode"])
    return converted


def forbid_nncf(monkeypatch) -> None:
    """Makes any call of nncf (directly or through optimum-intel) fail the test."""
    import nncf
    from optimum.intel.openvino import quantization

    def boom(*args, **kwargs):
        raise AssertionError("nncf was called")

    monkeypatch.setattr(nncf, "compress_weights", boom)
    monkeypatch.setattr(quantization, "_weight_only_quantization", boom)


def model_logits(model: ov.Model, items: list[dict]) -> list[np.ndarray]:
    """The model's logits for each item, from a fresh state (OpenVINO CPU, float32)."""
    compiled = ov.Core().compile_model(model, "CPU", EXACT_CPU)
    outputs = []
    for item in items:
        request = compiled.create_infer_request()
        request.reset_state()
        outputs.append(request.infer(item)["logits"].copy())
    return outputs


def logits_error(reference: list[np.ndarray], other: list[np.ndarray]) -> float:
    """Mean squared difference of two lists of logits."""
    return float(np.mean([np.mean((a - b) ** 2) for a, b in zip(reference, other)]))


def run_without_hf_side(code: str) -> dict:
    """Runs ``code`` in a fresh interpreter where the Hugging Face side's packages (:data:`HF_SIDE`) cannot be
    imported; returns the JSON it prints last."""
    blocker = textwrap.dedent(f"""
        import importlib.abc, sys
        class Blocked(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {HF_SIDE!r}:
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        sys.meta_path.insert(0, Blocked())
    """)
    done = subprocess.run(
        [sys.executable, "-c", blocker + textwrap.dedent(code)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def forbid_export(monkeypatch, intel_class: str) -> None:
    """Makes optimum-intel's ``intel_class`` (a name in ``optimum.intel``) fail on ``from_pretrained``, for tests of
    what is refused before any export."""

    def no_export(*args, **kwargs):
        raise AssertionError("exported before the refusal")

    monkeypatch.setattr(f"optimum.intel.{intel_class}.from_pretrained", no_export)


def save_image_folder(folder: pathlib.Path, count: int, seed: int = 0) -> pathlib.Path:
    """A ``datasets`` image folder: ``count`` random RGB images of different sizes (the first wider than the 600
    pixels optimum-intel shrinks images to) and a metadata.jsonl with a question for each."""
    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    rows = []
    for index in range(count):
        width, height = (650, 40) if index == 0 else (40 + 8 * index, 24 + 4 * index)
        pixels = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{index}.png")
        rows.append({"file_name": f"{index}.png", "question": f"what does sign {index} of the open vino model say?"})
    (folder / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return folder
