"""Export the embedded default model to OpenVINO IR, compress its weights with optimum-wc, and generate text.

    python examples/compress_default_model.py [--model DIR] [--output DIR] [--mode int4_asym] [--group-size 64]
                                              [--ratio 0.8]

The default model is ``models/tiny-llama-pydoc`` (a small Llama trained on the Python documentation). The
compressed model is written to a temporary folder and moved into ``--output`` at the end, so an interrupted run
never leaves a half-written folder behind.
"""

from __future__ import annotations

import argparse
import logging
import pathlib
import shutil
import tempfile
import time

import openvino as ov
import optimum_wc

REPO = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_MODEL = REPO / "models" / "tiny-llama-pydoc"


def export_to_ir(model_dir: pathlib.Path, out_dir: pathlib.Path) -> pathlib.Path:
    """Exports a Hugging Face causal LM to an uncompressed (f32) OpenVINO IR with optimum-intel."""
    from optimum.exporters.openvino import main_export
    from optimum.intel import OVConfig

    main_export(
        str(model_dir),
        output=out_dir,
        task="text-generation-with-past",
        ov_config=OVConfig(dtype="fp32"),  # no compression at export: optimum-wc does it
        library_name="transformers",
        local_files_only=True,
    )
    return out_dir / "openvino_model.xml"


def folder_size(path: pathlib.Path) -> int:
    return sum(p.stat().st_size for p in path.glob("openvino_model.*"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=pathlib.Path, default=DEFAULT_MODEL)
    parser.add_argument("--output", type=pathlib.Path, default=REPO / "outputs" / "tiny-llama-pydoc-int4")
    parser.add_argument("--mode", default="int4_asym", choices=[m.value for m in optimum_wc.CompressWeightsMode])
    parser.add_argument("--group-size", type=int, default=64)
    parser.add_argument("--ratio", type=float, default=0.8)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    int8 = args.mode.startswith("int8")
    options = {} if int8 else {"group_size": args.group_size, "ratio": args.ratio}
    with tempfile.TemporaryDirectory(prefix="optimum-wc-") as tmp:
        tmp = pathlib.Path(tmp)
        xml = export_to_ir(args.model, tmp / "fp32")
        model = ov.Core().read_model(xml)
        start = time.perf_counter()
        optimum_wc.compress_weights(model, mode=args.mode, **options)
        seconds = time.perf_counter() - start
        staged = tmp / "compressed"
        staged.mkdir()
        ov.save_model(model, staged / "openvino_model.xml", compress_to_fp16=False)
        for extra in (tmp / "fp32").iterdir():  # tokenizer, configs, OpenVINO tokenizer models
            if not extra.name.startswith("openvino_model."):
                shutil.copy2(extra, staged / extra.name)
        fp32_size, compressed_size = folder_size(tmp / "fp32"), folder_size(staged)
        if args.output.exists():
            shutil.rmtree(args.output)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staged), args.output)

    from optimum.intel import OVModelForCausalLM
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.output)
    lm = OVModelForCausalLM.from_pretrained(args.output, ov_config={"INFERENCE_PRECISION_HINT": "f32"})
    prompt = "The dictionary"
    tokens = lm.generate(**tokenizer(prompt, return_tensors="pt"), max_new_tokens=24, do_sample=False)
    print(f"compressed {args.model.name} with {args.mode} in {seconds:.2f} s")
    print(f"IR size: {fp32_size / 2**20:.1f} MiB (f32) -> {compressed_size / 2**20:.1f} MiB; saved to {args.output}")
    print(f"generation: {tokenizer.decode(tokens[0], skip_special_tokens=True)!r}")


if __name__ == "__main__":
    main()
