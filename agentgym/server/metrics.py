"""What ``GET /metrics`` reports: sessions, message rates, errors by code, latency quantiles.

Cheap enough to record on every message: a per-second counter ring for the rates and a
fixed ring of recent latencies per message type for the quantiles (computed on request).
"""

from __future__ import annotations

import time
from collections import Counter, deque
from typing import Any

WINDOW_S = 10
"""Rates are averaged over the last this many whole seconds."""
KEEP = 10_000
"""Latencies kept per message type for the quantiles."""


class _Ring:
    """The last ``size`` values."""

    def __init__(self, size: int):
        self.values: list[float] = []
        self.size = size
        self._next = 0

    def add(self, value: float) -> None:
        if len(self.values) < self.size:
            self.values.append(value)
        else:
            self.values[self._next] = value
            self._next = (self._next + 1) % self.size

    def quantiles(self, qs: tuple[float, ...]) -> dict[str, float | None]:
        ordered = sorted(self.values)
        if not ordered:
            return {f"p{round(q * 100)}": None for q in qs}
        return {f"p{round(q * 100)}": ordered[min(len(ordered) - 1, int(q * len(ordered)))] for q in qs}


class Metrics:
    """Counters and recent latencies of one server."""

    def __init__(self, window_s: int = WINDOW_S, keep: int = KEEP):
        self.started = time.monotonic()
        self.window_s = window_s
        self.keep = keep
        self.totals: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self._latency: dict[str, _Ring] = {}
        self._per_second: deque[list[float]] = deque()  # [second, steps]

    def record(self, kind: str, seconds: float) -> None:
        """One answered message of ``kind`` (reset, step, state) that took ``seconds``."""
        self.totals[kind] += 1
        ring = self._latency.get(kind)
        if ring is None:
            ring = self._latency[kind] = _Ring(self.keep)
        ring.add(seconds)
        if kind == "step":
            now = int(time.monotonic())
            if self._per_second and self._per_second[-1][0] == now:
                self._per_second[-1][1] += 1
            else:
                self._per_second.append([now, 1])
                while self._per_second and self._per_second[0][0] <= now - self.window_s - 1:
                    self._per_second.popleft()

    def error(self, code: str) -> None:
        self.errors[code] += 1

    def steps_per_s(self) -> float:
        """Steps per second over the last :attr:`window_s` whole seconds (or since start, if shorter)."""
        now = int(time.monotonic())
        counted = sum(n for sec, n in self._per_second if now - self.window_s <= sec < now)
        span = min(self.window_s, max(1, now - int(self.started)))
        return counted / span

    def snapshot(self, **gauges: Any) -> dict[str, Any]:
        """Everything, as ``GET /metrics`` sends it (latencies in milliseconds)."""
        latency = {kind: {k: None if v is None else round(v * 1000, 3)
                          for k, v in ring.quantiles((0.5, 0.9, 0.99)).items()}
                   for kind, ring in sorted(self._latency.items())}
        return {**gauges, "uptime_s": round(time.monotonic() - self.started, 3),
                "steps_per_s": round(self.steps_per_s(), 3), "messages": dict(self.totals),
                "errors": dict(self.errors), "errors_total": sum(self.errors.values()), "latency_ms": latency}
