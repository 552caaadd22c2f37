"""An opt-in sampler of event-loop stalls: what held a web process's event loop, and for how long.

    WEB_STALL_REPORT_MS=20 python -m config.web ...

Everything a web process does for its live clients and cached pages happens on one event loop, so
anything that holds it holds them all. The loop ticks a heartbeat every few milliseconds; a thread
watches it, and once the heartbeat is older than the threshold it samples the loop thread's stack
every few milliseconds until the loop comes back, then logs the stall's length and its most frequent
stacks. This is how the causes in config/asgi.py, config/handler.py, config/web.py and live/counters.py
were found (a first request's imports, Redis calls on the loop, daphne's once-a-second reaper, a
thread started per request). Off by default: the heartbeat costs a wake-up every few milliseconds.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable

logger = logging.getLogger(__name__)

Report = Callable[[float, list[tuple[str, int]]], None]


def _log(duration_s: float, stacks: list[tuple[str, int]]) -> None:
    logger.warning(
        "event loop held for %.0f ms; where it was (samples, innermost first):\n%s",
        duration_s * 1000,
        "\n".join(f"  {n} x {stack}" for stack, n in stacks),
    )


class StallSampler:
    def __init__(
        self,
        *,
        threshold_s: float,
        thread_id: int,
        sample_s: float = 0.003,
        depth: int = 8,
        report: Report = _log,
    ) -> None:
        self.threshold_s = threshold_s
        self.thread_id = thread_id
        self.sample_s = sample_s
        self.depth = depth
        self.report = report
        self.last_beat = time.monotonic()
        self.stalls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="stall-sampler", daemon=True)

    def beat(self) -> None:
        """Called by the loop being watched, every few milliseconds."""
        self.last_beat = time.monotonic()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _stack(self) -> str | None:
        frame = sys._current_frames().get(self.thread_id)
        if frame is None:
            return None
        summary = traceback.extract_stack(frame, limit=self.depth)
        return " < ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}:{f.name}" for f in reversed(summary))

    def _watch(self) -> None:
        while not self._stop.wait(self.sample_s):
            beat = self.last_beat
            if time.monotonic() - beat <= self.threshold_s:
                continue
            samples: Counter[str] = Counter()
            while self.last_beat == beat and not self._stop.is_set():
                stack = self._stack()
                if stack is not None:
                    samples[stack] += 1
                time.sleep(self.sample_s)
            self.stalls += 1
            self.report(self.last_beat - beat, samples.most_common(3))


def stall_sampler_start(*, threshold_s: float, beat_s: float = 0.002) -> StallSampler:
    """Watch the reactor's loop (the caller's thread) once it runs: the application's import before that
    is start-up, not a stall."""
    from twisted.internet import reactor, task

    sampler = StallSampler(threshold_s=threshold_s, thread_id=threading.get_ident())

    def running() -> None:
        sampler.beat()
        task.LoopingCall(sampler.beat).start(beat_s, now=False)
        sampler.start()

    reactor.callWhenRunning(running)
    return sampler
