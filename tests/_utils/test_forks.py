"""Forks held off during compression: a thread that forks while the main thread is in a threaded LAPACK call would
take OpenBLAS's workers away and stall that call forever (OpenVINO's telemetry forks from a pool thread so)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import openvino as ov
from openvino import opset13 as opset
from optimum_wc._utils import forks
from optimum_wc._utils.forks import forks_held_off

# The main thread factors matrices with threaded LAPACK while another thread forks as fast as it can; without the
# guard this stalls within a second on two BLAS threads (the parent's OpenBLAS workers are shut down mid-call).
RACE = textwrap.dedent("""
    import os, threading, time
    import numpy as np
    from optimum_wc._utils.forks import forks_held_off

    a = np.random.default_rng(0).standard_normal((300, 300))
    hessian = a @ a.T + 300 * np.eye(300)
    done = threading.Event()

    def fork_often():
        while not done.is_set():
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            os.waitpid(pid, 0)

    thread = threading.Thread(target=fork_often)
    thread.start()
    start = time.monotonic()
    while time.monotonic() - start < 3:
        with forks_held_off():
            for _ in range(50):
                np.linalg.cholesky(hessian)
    done.set()
    thread.join()
    print("finished")
""")


@pytest.mark.skipif(sys.platform != "linux", reason="OpenBLAS's fork handler is what stalls; Linux runs it here")
def test_threaded_lapack_survives_another_thread_forking():
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2"}
    try:
        result = subprocess.run(
            [sys.executable, "-c", RACE], env=env, capture_output=True, text=True, timeout=120, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.fail("threaded LAPACK stalled while another thread forked")
    assert result.returncode == 0 and "finished" in result.stdout, result.stderr


def test_another_threads_fork_waits_for_the_block_and_the_holder_may_fork():
    forked_at = []

    def fork_once():
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        forked_at.append(time.monotonic())
        os.waitpid(pid, 0)

    with forks_held_off():
        thread = threading.Thread(target=fork_once)
        thread.start()
        time.sleep(0.3)
        assert not forked_at, "another thread forked inside the block"
        with forks_held_off():  # nested, and the holder's own fork goes through
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            os.waitpid(pid, 0)
        ended = time.monotonic()
    thread.join(timeout=10)
    assert forked_at and forked_at[0] >= ended


def test_compression_holds_forks_off(monkeypatch):
    """compress_model holds the guard for the whole run (checked from another thread while it plans)."""
    import optimum_wc
    from optimum_wc import compress

    held = []
    real = compress.make_plan

    def probing(*args, **kwargs):
        probe = threading.Thread(target=lambda: held.append(not forks._held.acquire(blocking=False)))
        probe.start()
        probe.join()
        return real(*args, **kwargs)

    monkeypatch.setattr(compress, "make_plan", probing)
    x = opset.parameter([2, 64], ov.Type.f32, name="x")
    weight = opset.constant(np.random.default_rng(0).standard_normal((32, 64)).astype(np.float32), name="w")
    model = ov.Model([opset.matmul(x, weight, False, True, name="mm")], [x])
    optimum_wc.compress_weights(model, mode=optimum_wc.CompressWeightsMode.INT8_ASYM)
    assert held == [True]
