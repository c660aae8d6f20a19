"""Forks of the process held off while compression runs.

OpenBLAS (numpy's BLAS) shuts its worker threads down before every ``fork()`` of the process, from a handler it
registers with ``pthread_atfork``. A thread that forks while another thread is inside a threaded BLAS or LAPACK call
(a matrix product, GPTQ's Cholesky factorization) takes that call's workers away, and the caller then waits for them
forever. Some libraries fork from background threads at any time: OpenVINO's telemetry sends each event from a
``multiprocessing`` process that a thread-pool thread starts (after a model conversion, for one). Inside
:func:`forks_held_off`, a fork through Python (``os.fork``, ``multiprocessing``, ``subprocess`` where it forks)
from another thread waits until the block ends; the thread that holds it may still fork.
"""

from __future__ import annotations

from contextlib import contextmanager
import os
import threading
from typing import Iterator

_held = threading.RLock()


def _before_fork() -> None:
    _held.acquire()


def _after_fork_in_parent() -> None:
    _held.release()


def _after_fork_in_child() -> None:
    global _held
    _held = threading.RLock()  # the child has one thread: nothing of the parent's holds it there


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child)


@contextmanager
def forks_held_off() -> Iterator[None]:
    """Inside the block, other threads' forks wait (see the module docstring); blocks may nest."""
    with _held:
        yield
