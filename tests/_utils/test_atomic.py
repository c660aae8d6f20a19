"""Atomic output folders: what a killed writer leaves behind is repaired by the next write to the same target."""

from __future__ import annotations

import subprocess

import pytest

from optimum_wc._utils.atomic import atomic_directory, recover


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
    assert (tmp_path / "out" / "model.txt").read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == [
        "out"
    ]


def test_a_symbolic_link_to_a_folder_is_written_where_it_points_and_stays_a_link(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (real / "old.txt").write_text("old")
    link = tmp_path / "link"
    link.symlink_to(real)
    with atomic_directory(link) as staging:
        (staging / "model.txt").write_text("new")
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert sorted(p.name for p in real.iterdir()) == ["model.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]


def _mounted(folder) -> bool:
    folder.mkdir()
    command = ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)]
    return subprocess.run(command, capture_output=True).returncode == 0


@pytest.mark.parametrize("case", ["file", "under-a-file", "mount-point"])
def test_a_target_that_cannot_be_written_atomically_is_refused_before_the_body_runs(case, tmp_path, monkeypatch):
    """A mount point cannot be replaced by a rename: the writer used to fail after all the work, leaving its
    staging copy on the parent file system."""
    import os

    from optimum_wc.errors import OutputFolderError

    (tmp_path / "file").write_text("x")
    target = {"file": tmp_path / "file", "under-a-file": tmp_path / "file" / "out", "mount-point": tmp_path / "mnt"}[
        case
    ]
    mounted = case == "mount-point" and _mounted(target)
    if case == "mount-point" and not mounted:  # no permission to mount here: the check sees one all the same
        real_ismount = os.path.ismount
        monkeypatch.setattr(os.path, "ismount", lambda p: str(p) == str(target) or real_ismount(p))
    try:
        with pytest.raises(OutputFolderError, match=str(target)):
            with atomic_directory(target):
                pytest.fail("the body ran")
        assert sorted(p.name for p in tmp_path.iterdir()) == (["file", "mnt"] if case == "mount-point" else ["file"])
    finally:
        if mounted:
            subprocess.run(["umount", str(target)], check=True)


def test_the_written_folder_has_the_permissions_mkdir_gives(tmp_path):
    """mkdtemp's 0700 made saved models unreadable to other users (save_pretrained's folders are not)."""
    (tmp_path / "plain").mkdir()
    with atomic_directory(tmp_path / "out") as staging:
        (staging / "model.txt").write_text("x")
    assert (tmp_path / "out").stat().st_mode == (tmp_path / "plain").stat().st_mode


@pytest.mark.parametrize("existed", [False, True])
def test_a_writer_that_another_finished_before_is_told_so_and_keeps_its_output(existed, tmp_path):
    """The second of two concurrent writers used to replace the first one's output in silence."""
    from optimum_wc.errors import OutputFolderError

    target = tmp_path / "out"
    if existed:
        target.mkdir()
        (target / "model.txt").write_text("old")
    with pytest.raises(OutputFolderError, match="Another writer finished writing"):
        with atomic_directory(target) as slow:
            (slow / "model.txt").write_text("slow")
            with atomic_directory(target) as fast:  # finishes while the first one is still writing
                (fast / "model.txt").write_text("fast")
    assert (target / "model.txt").read_text() == "fast"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
