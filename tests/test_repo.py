"""Repository rules: the README's set-up commands are the ones CI runs, the embedded model is complete, the layers
hold, the code is linted and formatted."""

from __future__ import annotations

import json
import pathlib
import re
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parent.parent


def _bash_blocks(text: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def test_readme_gives_two_setup_commands_and_ci_runs_the_test_one():
    readme = (REPO / "README.md").read_text()
    setup = readme.split("## Set up on a fresh machine", 1)[1].split("\n## ", 1)[0]
    main_command, test_command = _bash_blocks(setup)
    assert "examples/compress_default_model.py" in main_command and "pytest" in test_command
    ci_lines = [line for line in (REPO / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert test_command in ci_lines


def test_embedded_default_model_is_shipped():
    model = REPO / "models" / "tiny-llama-pydoc"
    config = json.loads((model / "config.json").read_text())
    assert config["model_type"] == "llama"
    assert (model / "model.safetensors").stat().st_size > 30_000_000
    assert (model / "tokenizer.json").is_file()


def test_layers_never_import_upward():
    """The contracts in pyproject.toml ([tool.importlinter]): STYLE's layers, and numpy-only kernels. In a child
    process: import-linter reconfigures logging, which would hide later tests' log records from caplog."""
    code = "import sys; from importlinter.cli import lint_imports as f; sys.exit(f(sys.argv[1], no_cache=True))"
    done = subprocess.run([sys.executable, "-c", code, str(REPO / "pyproject.toml")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]


def test_the_code_is_linted_and_formatted():
    """ruff, with the settings in pyproject.toml; `ruff check --fix . && ruff format .` repairs most of it."""
    for command in (["check", "--no-cache", "."], ["format", "--no-cache", "--check", "."]):
        done = subprocess.run([sys.executable, "-m", "ruff", *command], cwd=REPO, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    tracked = subprocess.run(["git", "ls-files", "*.py"], cwd=REPO, capture_output=True, text=True).stdout.split()
    marker = "# fmt: " + "skip"  # the formatter decides the layout: no line opts out
    assert [f for f in tracked if marker in (REPO / f).read_text()] == []
