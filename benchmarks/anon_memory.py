"""Peak anonymous memory of the running process: the high-water mark of ``RssAnon`` (what the system cannot drop,
unlike the pages of a memory-mapped file), sampled by a thread. Benchmarks' child processes import it."""

from __future__ import annotations

import threading


def anon_bytes() -> int:
    """The process's ``RssAnon`` now, in bytes."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("RssAnon:"))


class PeakAnon:
    """Samples ``RssAnon`` every ``interval`` seconds from its creation until :meth:`stop`; ``base`` is the value at
    the start, ``peak`` the highest seen."""

    def __init__(self, interval: float = 0.005):
        self.base = self.peak = anon_bytes()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._sample, args=(interval,), daemon=True)
        self._thread.start()

    def _sample(self, interval: float) -> None:
        while not self._stopped.wait(interval):
            self.peak = max(self.peak, anon_bytes())

    def stop(self) -> int:
        """Stops sampling; returns the peak above the start, in bytes."""
        self._stopped.set()
        self._thread.join()
        self.peak = max(self.peak, anon_bytes())
        return self.peak - self.base
