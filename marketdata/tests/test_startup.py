"""The start-up timing line of the long-running commands (ingest, aggregate)."""

from __future__ import annotations

import re

from marketdata.management.commands._startup import StartupClock, process_age_s


def test_the_process_age_counts_from_the_process_start_not_from_the_import():
    age = process_age_s()
    assert age is not None and age > 0.0


def test_the_at_work_line_gives_each_phase_in_wall_and_cpu_seconds_since_the_process_began():
    clock = StartupClock()
    clock.mark("set-up")
    clock.mark("first work")
    line = clock.line()
    found = re.fullmatch(
        r"at work ([\d.]+) s since the process began \(django ([\d.]+) s/[\d.]+ s CPU, "
        r"set-up ([\d.]+) s/[\d.]+ s CPU, first work ([\d.]+) s/[\d.]+ s CPU\)",
        line,
    )
    assert found, line
    total, *phases = (float(x) for x in found.groups())
    assert abs(total - sum(phases)) < 0.02
    assert (
        abs(phases[0] - clock.marks[0][1]) < 0.01 and phases[0] > 0.0
    )  # the interpreter's and Django's start-up, before the command ran
