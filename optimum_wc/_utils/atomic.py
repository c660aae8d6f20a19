"""Writing an output folder so that a failure midway never leaves it half-written.

Everything is written into a staging folder beside the target, ``.<name>.partial-<pid>-<random>``, which replaces
the target in one rename at the end. A target that is a symbolic link is written where the link points (the link
stays); one that cannot be replaced by a rename (a mount point) or written at all is refused before any work
(:func:`check_output_folder`). Replacing an existing target takes two renames (the old one is first moved
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

from optimum_wc.errors import OutputFolderError


def _identity(path: pathlib.Path) -> tuple[int, int, int] | None:
    """What tells one folder at ``path`` from another put there since (None: nothing there)."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino, stat.st_ctime_ns


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


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


def check_output_folder(target: str | os.PathLike) -> pathlib.Path:
    """Returns the real folder a model written to ``target`` goes to (symbolic links followed), after refusing,
    with an :class:`~optimum_wc.errors.OutputFolderError` naming the path, a target that is a file or lies under
    one, a mount point (it cannot be replaced in one rename), or one whose nearest existing folder this process
    may not write."""
    given = pathlib.Path(target)
    path = pathlib.Path(os.path.realpath(given))
    if path.is_file():
        raise OutputFolderError(f"The output folder {given} is a file; give a folder to write the model into.")
    if os.path.ismount(path):
        msg = (
            f"The output folder {given} is a mount point: it cannot be replaced in one rename, so the model "
            f"cannot be written into it atomically. Give a folder inside it, e.g. {given / 'model'}."
        )
        raise OutputFolderError(msg)
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise OutputFolderError(f"The output folder {given} lies under {existing}, which is a file.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputFolderError(f"The output folder {given} cannot be written: {existing} is not writable.")
    return path


EXPORT_PREFIX = "optimum-wc-export-"


def remove_dead_exports(folder: str | os.PathLike | None = None) -> None:
    """Removes the export folders (``optimum-wc-export-<pid>-*``, holding a whole float IR) that killed processes
    left in ``folder`` (default: the temporary folder); those of running processes are left alone."""
    root = pathlib.Path(folder or tempfile.gettempdir())
    pattern = re.compile(rf"^{re.escape(EXPORT_PREFIX)}(\d+)-")
    for entry in root.glob(f"{EXPORT_PREFIX}*"):
        match = pattern.match(entry.name)
        if match and entry.is_dir() and not _alive(int(match.group(1))):
            shutil.rmtree(entry, ignore_errors=True)


@contextmanager
def atomic_directory(target: str | os.PathLike, overwrite: bool = True) -> Iterator[pathlib.Path]:
    """Yields an empty staging folder beside ``target``; on success it replaces ``target`` in one rename.

    If the body raises, the staging folder is removed and ``target`` (and anything it held) is left untouched.
    With ``overwrite=False`` a non-empty ``target`` is refused before anything is written.

    Raises:
        FileExistsError: ``target`` is a non-empty folder and ``overwrite`` is False.
        OutputFolderError: ``target`` cannot be written atomically (see :func:`check_output_folder`).
    """
    target = check_output_folder(target)
    recover(target)
    if not overwrite and target.is_dir() and any(target.iterdir()):
        raise FileExistsError(f"{target} is not empty; choose an empty folder or allow overwriting.")
    target.parent.mkdir(parents=True, exist_ok=True)
    before = _identity(target)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-{os.getpid()}-", dir=target.parent))
    staging.chmod(0o777 & ~_umask())  # what mkdir gives (save_pretrained's folders); mkdtemp's 0700 is for secrets
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if _identity(target) != before:  # another writer replaced the target since this one began: keep its output
        shutil.rmtree(staging, ignore_errors=True)
        raise OutputFolderError(
            f"Another writer finished writing {target} while this one was writing; its output is kept and this one "
            "is discarded. Write again to replace it, or write to another folder."
        )
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
WRITE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS)  # a write failed, not a file was missing


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
