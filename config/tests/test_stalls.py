"""The opt-in stall sampler says how long the watched loop was held, and where."""

from __future__ import annotations

import threading
import time

from config.stalls import StallSampler


def _hold_the_loop() -> None:
    time.sleep(0.15)  # the stall under observation, not a wait


def test_a_held_loop_is_reported_with_its_length_and_the_code_that_held_it():
    reports: list[tuple[float, list[tuple[str, int]]]] = []
    done = threading.Event()

    def loop() -> None:  # stands in for the event loop: beats, is held once, beats again
        for _ in range(20):
            sampler.beat()
            time.sleep(0.002)
        _hold_the_loop()
        while not done.is_set():
            sampler.beat()
            time.sleep(0.002)

    thread = threading.Thread(target=loop)
    sampler = StallSampler(threshold_s=0.05, thread_id=0, report=lambda d, s: reports.append((d, s)))
    thread.start()
    sampler.thread_id = thread.ident or 0
    sampler.start()
    deadline = time.monotonic() + 10
    while not _held(reports) and time.monotonic() < deadline:
        time.sleep(0.01)
    done.set()
    thread.join()
    sampler.stop()
    # On a busy machine the stand-in loop may also be late now and then: those are reported too.
    held = _held(reports)
    assert len(held) == 1, reports
    assert 0.1 <= held[0][0] < 5.0


def _held(reports: list[tuple[float, list[tuple[str, int]]]]) -> list[tuple[float, list[tuple[str, int]]]]:
    return [r for r in reports if r[1] and "_hold_the_loop" in r[1][0][0]]
