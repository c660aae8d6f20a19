"""The ``optimum-wc`` command line, mirroring ``optimum-cli export openvino``.

    optimum-wc export MODEL OUTPUT_DIR --weight-format FORMAT [compression flags] [--overwrite]
    optimum-wc export openvino -m MODEL [optimum-cli's export options] [compression flags] OUTPUT_DIR
    optimum-wc eval MODEL [--reference MODEL] --dataset TEXT [--metric {perplexity,similarity}] ...
    optimum-wc tune MODEL OUTPUT_DIR (--max-perplexity-increase 5% | --min-similarity 0.9 | --max-kl X) ...

``export``'s compression flags are those of :data:`optimum_wc.config.options.OPTIONS`; ``--help`` lists them.
"""

from __future__ import annotations

import argparse
import logging
import sys

from optimum_wc.cli.evaluate import add_eval, load_for_evaluation, run_eval
from optimum_wc.cli.export import add_export, config_from_args, run_export, run_options
from optimum_wc.cli.openvino import build_openvino_parser, run_export_openvino
from optimum_wc.cli.tune import BudgetNotMet, add_tune, run_tune
from optimum_wc.errors import MissingExtraError, OptimumWCError

__all__ = ["build_parser", "config_from_args", "load_for_evaluation", "main", "run_options"]

logger = logging.getLogger("optimum_wc.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="optimum-wc", description="NNCF-compatible weight compression for OpenVINO.")
    commands = parser.add_subparsers(dest="command", required=True)
    add_export(commands)
    add_eval(commands)
    add_tune(commands)
    return parser


COMMANDS = {"export": run_export, "export openvino": run_export_openvino, "eval": run_eval, "tune": run_tune}
EXTRAS = {"matplotlib": "tune", "sentence_transformers": "similarity"}  # the `hf` extra brings the other packages


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:2] == ["export", "openvino"]:  # optimum-cli's form: its own parser (-m MODEL ... OUTPUT)
        args = build_openvino_parser().parse_args(argv[2:])
        args.command = "export openvino"
    else:
        args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        try:
            COMMANDS[args.command](args)
        except ModuleNotFoundError as exc:  # a package of an extra the command needs
            top = (exc.name or "").split(".")[0]
            if not top or top == "optimum_wc":
                raise
            raise MissingExtraError(f"optimum-wc {args.command}", EXTRAS.get(top, "hf"), top) from exc
    except BudgetNotMet as exc:
        logger.error("optimum-wc: %s", exc)
        return 1
    except (OptimumWCError, OSError, ValueError) as exc:
        logger.error("optimum-wc: error: %s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
