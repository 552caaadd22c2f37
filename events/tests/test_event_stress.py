"""The pure core of event reports: calm, peak, p95, gaps, recovery and ranking."""

from __future__ import annotations

from events.stress import MinuteBar, percentile, stress_of, stress_rank_key


def calm_then(values_after: dict[int, float], calm: float = 1.0) -> list[MinuteBar]:
    bars = [MinuteBar(m, calm, calm) for m in range(-60, -5)]
    for m in range(-5, 30):
        if m in values_after:
            v = values_after[m]
            bars.append(MinuteBar(m, v, v * 1.2))
    return bars


def test_calm_is_the_median_of_the_hour_before_and_peak_the_widest_quote():
    s = stress_of(calm_then({m: 1.0 for m in range(-5, 30)} | {0: 4.0, 1: 3.0}))
    assert s.calm == 1.0
    assert s.peak == 4.0 * 1.2
    assert s.longest_gap_s == 0


def test_recovery_counts_seconds_from_the_release_to_the_first_minute_back_within_one_and_a_half_calm():
    s = stress_of(calm_then({m: 1.0 for m in range(-5, 30)} | {0: 4.0, 1: 3.0, 2: 2.0, 3: 1.4}))
    assert s.recovery_s == 180


def test_a_spread_that_never_leaves_the_band_recovers_in_zero_and_one_that_stays_wide_never():
    assert stress_of(calm_then({m: 1.2 for m in range(-5, 30)})).recovery_s == 0
    assert stress_of(calm_then({m: 3.0 for m in range(-5, 30)})).recovery_s is None


def test_the_longest_gap_is_the_longest_run_of_minutes_without_quotes():
    s = stress_of(calm_then({m: 1.0 for m in range(-5, 30) if not 0 <= m < 7}))
    assert s.longest_gap_s == 7 * 60
    assert s.missing_minutes == 7


def test_a_broker_dark_at_the_release_ranks_worse_than_one_that_widened():
    widened = stress_of(calm_then({m: 2.0 for m in range(-5, 30)}))
    dark = stress_of(calm_then({m: 1.0 for m in range(-5, 30) if not 0 <= m < 20}))
    silent = stress_of(calm_then({}))
    assert silent.p95 is None
    key_widened, key_dark, key_silent = (stress_rank_key([s]) for s in (widened, dark, silent))
    assert key_widened is not None and key_dark is not None and key_silent is not None
    assert key_widened < key_dark
    assert key_widened < key_silent


def test_percentile_interpolates_like_numpy():
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([5], 95) == 5
