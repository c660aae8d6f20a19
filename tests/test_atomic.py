"""Atomic output folders: what a killed writer leaves behind is repaired by the next write to the same target."""

from __future__ import annotations

import subprocess

import pytest

from optimum_wc.atomic import atomic_directory, recover


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_a_previous_folder_of_a_dead_writer_comes_back_when_the_target_is_absent(tmp_path):
    pid = _dead_pid()
    previous = tmp_path / f".out.previous-{pid}"
    previous.mkdir()
    (previous / "model.txt").write_text("old")
    stale = tmp_path / f".out.partial-{pid}-abc"
    stale.mkdir()
    (stale / "half.bin").write_bytes(b"\0" * 10)
    live = tmp_path / ".out.partial-1-xyz"  # pid 1 is alive: another writer's work in progress is left alone
    live.mkdir()
    recover(tmp_path / "out")
    assert (tmp_path / "out" / "model.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.partial-1-xyz", "out"]


def test_a_previous_folder_is_dropped_when_the_target_exists(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "model.txt").write_text("new")
    previous = tmp_path / f".out.previous-{_dead_pid()}"
    previous.mkdir()
    recover(tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert (tmp_path / "out" / "model.txt").read_text() == "new"


def test_failure_in_the_body_leaves_the_target_and_no_staging(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "model.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_directory(tmp_path / "out") as staging:
            (staging / "model.txt").write_text("half")
            raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert (tmp_path / "out" / "model.txt").read_text() == "old"
    with atomic_directory(tmp_path / "out") as staging:
        (staging / "model.txt").write_text("new")
    assert (tmp_path / "out" / "model.txt").read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["out"]
