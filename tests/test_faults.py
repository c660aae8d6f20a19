"""Faults: a compression or save killed midway, or a full disk, leaves the output absent or complete (never
half-written) and the input untouched. The killed runs are real processes, stopped with SIGKILL at a known point."""

from __future__ import annotations

import hashlib
import logging
import os
import pathlib
import signal
import subprocess
import sys
import textwrap

import pytest

from parity import compare_ir

pytestmark = pytest.mark.slow  # kills real processes mid-export and fills a real tmpfs

REPO = pathlib.Path(__file__).resolve().parent.parent
EMBEDDED = REPO / "models" / "tiny-llama-pydoc"


def _digest(folder: pathlib.Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def _run_until(marker: str, body: str) -> int:
    """Runs ``body`` in a fresh Python process, kills it with SIGKILL once it prints ``marker``; returns its pid."""
    script = "import sys, time\nsys.path.insert(0, %r)\n" % str(REPO) + textwrap.dedent(body)
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "TQDM_DISABLE": "1"},
    )
    try:
        for line in process.stdout:
            if line.strip() == marker:
                process.send_signal(signal.SIGKILL)
                break
    finally:
        process.wait(timeout=600)
    assert process.returncode == -signal.SIGKILL, f"the child ended by itself ({process.returncode})"
    return process.pid


def _pause(point: str) -> str:
    """Child-side code: print ``point`` and hang (the parent kills the process there)."""
    return f"lambda *args, **kwargs: (print({point!r}, flush=True), time.sleep(600))"


@pytest.fixture(scope="module")
def input_digest() -> dict[str, str]:
    return _digest(EMBEDDED)


def test_export_killed_during_compression_writes_nothing(tmp_path, input_digest):
    _run_until(
        "COMPRESSING",
        f"""
        import optimum_wc.hf.compressed as compressed
        compressed.compress_model = {_pause("COMPRESSING")}
        from optimum_wc.cli import main
        main(["export", {str(EMBEDDED)!r}, {str(tmp_path / "out")!r}, "--weight-format", "int4"])
    """,
    )
    assert list(tmp_path.iterdir()) == []  # no output folder, no staging folder
    assert _digest(EMBEDDED) == input_digest


def test_save_killed_while_writing_leaves_no_output_and_the_next_save_cleans_up(tmp_path, input_digest):
    pid = _run_until(
        "WRITING",
        f"""
        import optimum_wc.hf.modeling as modeling
        import optimum_wc.saving.folder as folder
        folder.write_model_card = {_pause("WRITING")}  # the IR is already in the staging folder by then
        model = modeling.OVModelForCausalLM.from_pretrained({str(EMBEDDED)!r}, export=True, load_in_8bit=True,
                                                             compile=False)
        model.save_pretrained({str(tmp_path / "out")!r})
    """,
    )
    staging = [p for p in tmp_path.iterdir()]
    assert [p.name.startswith(f".out.partial-{pid}-") for p in staging] == [True]  # half-written, hidden, not "out"
    assert (staging[0] / "openvino_model.bin").is_file()
    assert _digest(EMBEDDED) == input_digest

    from optimum_wc import OVModelForCausalLM

    model = OVModelForCausalLM.from_pretrained(EMBEDDED, export=True, load_in_8bit=True, compile=False)
    model.save_pretrained(tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # the dead writer's staging folder is gone
    assert (
        OVModelForCausalLM.from_pretrained(tmp_path / "out", compile=False).quantization_config.mode.value
        == "int8_asym"
    )


def test_save_killed_while_replacing_an_output_keeps_the_previous_one(tmp_path):
    from optimum_wc import OVModelForCausalLM

    model = OVModelForCausalLM.from_pretrained(EMBEDDED, export=True, load_in_8bit=True, compile=False)
    model.save_pretrained(tmp_path / "out")
    previous = _digest(tmp_path / "out")
    pid = _run_until(
        "SWAPPING",
        f"""
        import os
        import optimum_wc._utils.atomic as atomic
        replace = os.replace
        def slow_replace(source, destination):
            replace(source, destination)
            if ".previous-" in str(destination):  # the old output moved aside, the new one not yet in place
                print("SWAPPING", flush=True)
                time.sleep(600)
        atomic.os.replace = slow_replace
        import optimum_wc.hf.modeling as modeling
        model = modeling.OVModelForCausalLM.from_pretrained({str(EMBEDDED)!r}, export=True, load_in_4bit=True,
                                                             compile=False)
        model.save_pretrained({str(tmp_path / "out")!r})
    """,
    )
    assert not (tmp_path / "out").exists()  # absent, never half-written...
    assert _digest(tmp_path / f".out.previous-{pid}") == previous  # ...and the previous output is whole

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("optimum_wc.saving.folder.write_model_card", full_disk)
        with pytest.raises(OSError, match="No space left on device"):
            model.save_pretrained(tmp_path / "out")
    assert _digest(tmp_path / "out") == previous  # the next write repaired it first, then failed cleanly
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def _mount_tmpfs(folder: pathlib.Path, size: str) -> bool:
    folder.mkdir()
    return (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True
        ).returncode
        == 0
    )


def test_full_disk_during_export_leaves_the_previous_output(tmp_path, monkeypatch, caplog, input_digest):
    """On a real 4 MiB tmpfs where the system allows mounting one, else with a writer that fails like one."""
    from optimum_wc.cli import main

    disk = tmp_path / "disk"
    mounted = _mount_tmpfs(disk, "4m")
    try:
        if not mounted:
            import openvino as ov

            save_model = ov.save_model

            def fill_up(model, path, *args, **kwargs):
                save_model(model, path, *args, **kwargs)
                bin_file = pathlib.Path(path).with_suffix(".bin")
                bin_file.write_bytes(bin_file.read_bytes()[: 4 * 2**20])
                raise OSError(28, "No space left on device")

            monkeypatch.setattr(ov, "save_model", fill_up)
        (disk / "out").mkdir()
        (disk / "out" / "mine.txt").write_text("keep")
        caplog.set_level(logging.ERROR)
        code = main(["export", str(EMBEDDED), str(disk / "out"), "--weight-format", "int8", "--overwrite"])
        assert code == 2 and "No space left on device" in caplog.text
        assert sorted(p.name for p in disk.iterdir()) == ["out"]  # the staging folder was removed
        assert [p.name for p in (disk / "out").iterdir()] == ["mine.txt"]
        assert _digest(EMBEDDED) == input_digest
    finally:
        if mounted:
            subprocess.run(["umount", str(disk)], check=True)


@pytest.mark.parametrize("free", ["full", "plenty"])
def test_a_tokenizer_write_that_fails_on_a_full_disk_fails_the_save(free, tmp_path, monkeypatch, caplog):
    """ENOSPC while converting the tokenizer was logged as "not written" and the save went on (exit 0, tokenizer
    IRs missing); on a full disk it now fails the save, which leaves no output. A tokenizer that cannot be
    converted for another reason still only warns."""
    from collections import namedtuple
    import shutil

    from optimum.exporters.openvino import convert

    from optimum_wc import OVModelForCausalLM

    model = OVModelForCausalLM.from_pretrained(EMBEDDED, export=True, load_in_8bit=True, compile=False)

    def failing_write(*args, **kwargs):
        raise RuntimeError("Exception from src/core/src/pass/serialize.cpp: basic_ios::clear: iostream error")

    monkeypatch.setattr(convert, "export_tokenizer", failing_write)
    usage = shutil.disk_usage
    low = namedtuple("usage", "total used free")(2**30, 2**30 - 2**20, 2**20)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: low if free == "full" else usage(path))
    caplog.set_level(logging.WARNING)
    out = tmp_path / "out"
    if free == "full":
        with pytest.raises(OSError, match="No space left on device"):
            model.save_pretrained(out)
        assert not out.exists() and list(tmp_path.iterdir()) == []
    else:
        model.save_pretrained(out)
        assert (out / "openvino_model.xml").is_file() and not (out / "openvino_tokenizer.xml").exists()
        assert "OpenVINO tokenizer models were not written" in caplog.text


@pytest.mark.parametrize("arch", ["llama", "llama-fp16"])
def test_a_model_compressed_from_a_path_can_be_saved_over_that_ir(arch, tiny_ir, tmp_path):
    """The weights left as they were (norms, an ignored lm_head) were still read from the source .bin's mapping,
    so ``ov.save_model`` over that file killed the process with SIGBUS as it truncated it. Now the model no
    longer reads the file, and what is saved is what saving it elsewhere gives."""
    import shutil

    source = tmp_path / "ir"
    shutil.copytree(tiny_ir(arch).parent, source)
    script = textwrap.dedent(f"""
        import openvino as ov, optimum_wc
        model = optimum_wc.compress_weights({str(source)!r}, mode="int4_asym", progress=False,
                                            ignored_scope=optimum_wc.IgnoredScope(patterns=[".*lm_head.*"]))
        ov.save_model(model, {str(tmp_path / "elsewhere.xml")!r}, compress_to_fp16=False)
        ov.save_model(model, {str(source / "openvino_model.xml")!r}, compress_to_fp16=False)
        read = ov.Core().read_model({str(tiny_ir(arch))!r})  # an ov.Model: compressed as before, nothing moved
        optimum_wc.compress_weights(read, mode="int4_asym", progress=False,
                                    ignored_scope=optimum_wc.IgnoredScope(patterns=[".*lm_head.*"]))
        ov.save_model(read, {str(tmp_path / "from_model.xml")!r}, compress_to_fp16=False)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    for suffix in (".xml", ".bin"):
        assert (source / "openvino_model").with_suffix(suffix).read_bytes() == (
            tmp_path / f"elsewhere{suffix}"
        ).read_bytes()
    report = compare_ir(tmp_path / "from_model.xml", source / "openvino_model.xml")  # OpenVINO's auto names aside
    assert report.identical, report.describe()


def test_the_float_ir_a_killed_export_leaves_is_removed_by_the_next_export(tmp_path, monkeypatch):
    """optimum-intel's temporary export folder (the whole float IR) stayed in TMPDIR for good after a kill."""
    import tempfile

    exports = tmp_path / "tmp"
    exports.mkdir()
    monkeypatch.setenv("TMPDIR", str(exports))
    pid = _run_until(
        "COMPRESSING",
        f"""
        import optimum_wc.hf.compressed as compressed
        import optimum_wc.hf.modeling as modeling
        compressed.compress_model = {_pause("COMPRESSING")}
        modeling.OVModelForCausalLM.from_pretrained({str(EMBEDDED)!r}, export=True, load_in_8bit=True, compile=False)
    """,
    )
    left = [p.name for p in exports.iterdir()]
    assert len(left) == 1 and left[0].startswith(f"optimum-wc-export-{pid}-")
    assert (exports / left[0] / "openvino_model.bin").is_file()

    from optimum_wc import OVModelForCausalLM

    monkeypatch.setattr(tempfile, "tempdir", str(exports))
    model = OVModelForCausalLM.from_pretrained(EMBEDDED, export=True, load_in_8bit=True, compile=False)
    now = [p.name for p in exports.iterdir()]  # the dead process's folder is gone; this process's own is in use
    assert left[0] not in now and len(now) == 1 and now[0].startswith(f"optimum-wc-export-{os.getpid()}-")
    del model
