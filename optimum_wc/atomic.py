"""Writing an output folder so that a failure midway never leaves it half-written."""

from __future__ import annotations

from contextlib import contextmanager
import os
import pathlib
import shutil
import tempfile
from typing import Iterator


@contextmanager
def atomic_directory(target: str | os.PathLike, overwrite: bool = True) -> Iterator[pathlib.Path]:
    """Yields an empty staging folder beside ``target``; on success it replaces ``target`` in one rename.

    If the body raises, the staging folder is removed and ``target`` (and anything it held) is left untouched.
    With ``overwrite=False`` a non-empty ``target`` is refused before anything is written.

    Raises:
        FileExistsError: ``target`` is a non-empty folder and ``overwrite`` is False, or ``target`` is a file.
    """
    target = pathlib.Path(target).absolute()
    if target.is_file():
        raise FileExistsError(f"{target} is a file; expected a folder to write the model into.")
    if not overwrite and target.is_dir() and any(target.iterdir()):
        raise FileExistsError(f"{target} is not empty; choose an empty folder or allow overwriting.")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
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
