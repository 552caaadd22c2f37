"""Start-up timing of the long-running commands (ingest, aggregate): when a supervisor restarts one after a
crash, how long until it is at work again, and where that time went.

Phases, in seconds since the process began (the kernel's start time, so the interpreter's own start-up and
Django's set-up are included): "django" until the command runs, "set-up" until it is ready to read or
connect, "first work" until its first batch is durable (an ingestor: confirmed by Redis or in its
write-ahead file; the aggregator: its first commit). The CPU seconds beside them tell a slow start on a
busy machine (little CPU, much waiting for it) from a start that has too much to do.
"""

from __future__ import annotations

import os
import time


def process_age_s() -> float | None:
    """Seconds since this process began (Linux /proc), or None where that cannot be read."""
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: start time, in ticks since boot
    except (OSError, ValueError, IndexError):
        return None


class StartupClock:
    """Marks phases of a start (wall and CPU seconds), and writes them as one line."""

    def __init__(self) -> None:
        age = process_age_s()
        self._origin = time.monotonic() - (age or 0.0)
        self._known_origin = age is not None
        self.marks: list[tuple[str, float, float]] = [("django", time.monotonic() - self._origin, time.process_time())]

    def mark(self, phase: str) -> None:
        self.marks.append((phase, time.monotonic() - self._origin, time.process_time()))

    def line(self) -> str:
        """E.g. "at work 3.10 s since the process began (django 2.40 s/1.90 s CPU, set-up 0.20 s/0.15 s CPU, ...)"."""
        parts, wall, cpu = [], 0.0, 0.0
        for phase, at, used in self.marks:
            parts.append(f"{phase} {at - wall:.2f} s/{used - cpu:.2f} s CPU")
            wall, cpu = at, used
        since = "since the process began" if self._known_origin else "since the command began"
        return f"at work {wall:.2f} s {since} ({', '.join(parts)})"
