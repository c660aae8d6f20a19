"""Writing an output folder so that a failure midway never leaves it half-written.

Everything is written into a staging folder beside the target, ``.<name>.partial-<pid>-<random>``, which replaces
the target in one rename at the end. Replacing an existing target takes two renames (the old one is first moved
to ``.<name>.previous-<pid>``); a process killed between them leaves the target absent and its previous content
in that folder. The next write to the same target repairs this first: it puts back a previous folder whose
process is gone (when the target is absent) and removes stale staging folders of dead processes.
"""

from __future__ import annotations

from contextlib import contextmanager
import errno
import os
import pathlib
import re
import shutil
import tempfile
from typing import Iterator


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover(target: str | os.PathLike) -> None:
    """Repairs what a killed writer of ``target`` left: restores its previous content if the target is absent, and
    removes stale staging and previous folders of processes that no longer run."""
    target = pathlib.Path(target).absolute()
    if not target.parent.is_dir():
        return
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.(partial|previous)-(\d+)(-.*)?$")
    leftovers = []
    for sibling in target.parent.iterdir():
        match = pattern.match(sibling.name)
        if match and sibling.is_dir() and not _alive(int(match.group(2))):
            leftovers.append((match.group(1), sibling))
    for kind, sibling in sorted(leftovers, key=lambda item: item[0] != "previous"):
        if kind == "previous" and not target.exists():
            os.replace(sibling, target)
        else:
            shutil.rmtree(sibling, ignore_errors=True)


@contextmanager
def atomic_directory(target: str | os.PathLike, overwrite: bool = True) -> Iterator[pathlib.Path]:
    """Yields an empty staging folder beside ``target``; on success it replaces ``target`` in one rename.

    If the body raises, the staging folder is removed and ``target`` (and anything it held) is left untouched.
    With ``overwrite=False`` a non-empty ``target`` is refused before anything is written.

    Raises:
        FileExistsError: ``target`` is a non-empty folder and ``overwrite`` is False, or ``target`` is a file.
    """
    target = pathlib.Path(target).absolute()
    recover(target)
    if target.is_file():
        raise FileExistsError(f"{target} is a file; expected a folder to write the model into.")
    if not overwrite and target.is_dir() and any(target.iterdir()):
        raise FileExistsError(f"{target} is not empty; choose an empty folder or allow overwriting.")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-{os.getpid()}-", dir=target.parent))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    backup = None
    if target.exists():
        backup = target.with_name(f".{target.name}.previous-{os.getpid()}")
        os.replace(target, backup)
    try:
        os.replace(staging, target)
    except BaseException:
        if backup is not None:
            os.replace(backup, target)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)


LOW_SPACE_BYTES = 16 * 2**20


@contextmanager
def disk_errors(folder: pathlib.Path) -> Iterator[None]:
    """Turns OpenVINO's write failures (a ``RuntimeError`` such as "basic_ios::clear: iostream error", which names
    neither the cause nor the place) into an ``OSError`` that does: ENOSPC when the disk is (nearly) full."""
    try:
        yield
    except RuntimeError as exc:
        free = shutil.disk_usage(folder).free
        code = errno.ENOSPC if free < LOW_SPACE_BYTES else errno.EIO
        raise OSError(code, f"{os.strerror(code)} while writing to {folder} ({free:,} bytes free): {exc}") from exc

