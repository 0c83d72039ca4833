"""Peak memory of a block of work (the candidates' and the benchmark's measure)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch


class PeakMemory:
    """Peak resident memory (MB) of the process while a block runs (sampled), or CUDA's peak allocation."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak_mb = 0.0
        self._stop = threading.Event()

    @staticmethod
    def _rss_mb() -> float:
        try:
            with open("/proc/self/statm") as handle:
                return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        except OSError:
            return 0.0

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak_mb = max(self.peak_mb, self._rss_mb())

    @contextmanager
    def watch(self) -> Iterator[PeakMemory]:
        self.peak_mb = self._rss_mb()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        sampler = threading.Thread(target=self._sample, daemon=True)
        sampler.start()
        try:
            yield self
        finally:
            self._stop.set()
            sampler.join()
            self.peak_mb = max(self.peak_mb, self._rss_mb())
            if self.device.type == "cuda":
                self.peak_mb = torch.cuda.max_memory_allocated(self.device) / 2**20
