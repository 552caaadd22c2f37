"""The split is the best there is: checked against every allocation of small books (pure core only)."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from execution.split import Offer, _Curve, best_split, split_solve


def brute_force(offers: list[Offer], size_ticks: int) -> tuple[int, float]:
    """(ticks filled, cost) of the best of all allocations: the most filled, then the cheapest."""
    choices = []
    for o in offers:
        curve = _Curve.of(o.levels)
        cap = min(math.floor(curve.depth / (o.step * o.tick) + 1e-9), size_ticks // o.step)
        steps = [0, *range(o.min_steps, cap + 1)]
        choices.append([(k * o.step, curve.cost_to(k * o.step * o.tick)) for k in steps])
    best: tuple[int, float] | None = None
    for combo in itertools.product(*choices):
        groups = [o.group for o, (t, _) in zip(offers, combo, strict=True) if t > 0 and o.group is not None]
        if len(groups) != len(set(groups)):
            continue  # two accounts of one broker: the same depth counted twice
        filled = sum(t for t, _ in combo)
        if filled > size_ticks:
            continue
        cost = sum(c for _, c in combo)
        if best is None or filled > best[0] or (filled == best[0] and cost < best[1]):
            best = (filled, cost)
    assert best is not None
    return best


def priced(offers: list[Offer], ticks: list[int]) -> tuple[int, float]:
    return sum(ticks), sum(_Curve.of(o.levels).cost_to(t * o.tick) for o, t in zip(offers, ticks, strict=True))


def on_grid(offer: Offer, ticks: int) -> bool:
    return ticks == 0 or (ticks % offer.step == 0 and ticks >= offer.step * offer.min_steps)


def test_a_cheap_minimum_block_beats_greedy_cheapest_steps_first():
    # Greedy cheapest-first takes c's half lot at 1.00 and b's half lot at 1.05, then cannot fit a's one-lot
    # minimum (1.10 a unit on average) and pays 1.19 on b for the rest: 1.62. Better: a's block and c's half.
    offers = [
        Offer(levels=[(1.00, 5), (1.20, 100)], step=1, min_steps=10, tick=1.0),  # a: 1 lot minimum
        Offer(levels=[(1.05, 5), (1.19, 100)], step=1, min_steps=1, tick=1.0),  # b
        Offer(levels=[(1.00, 5), (2.00, 100)], step=1, min_steps=1, tick=1.0),  # c
    ]
    ticks = best_split(offers, size_ticks=15)
    assert ticks == [10, 0, 5]
    assert priced(offers, ticks)[1] == pytest.approx(5 * 1.00 + 5 * 1.20 + 5 * 1.00)


def test_a_coarse_step_that_cannot_fit_the_rest_leaves_it_to_a_finer_account():
    # Two lots from a 1.5-lot-step account leave half a lot nobody fills; the 1-lot account fills both.
    offers = [
        Offer(levels=[(1.0, 100)], step=15, min_steps=1, tick=1.0),
        Offer(levels=[(1.01, 100)], step=10, min_steps=1, tick=1.0),
    ]
    assert best_split(offers, size_ticks=20) == [0, 20]


def test_nothing_fits_below_every_minimum():
    offers = [Offer(levels=[(1.0, 100)], step=10, min_steps=1, tick=1.0)]
    assert best_split(offers, size_ticks=9) == [0]


def test_a_million_steps_inside_one_level_cost_one_run_not_a_million():
    offer = Offer(levels=[(1.1, 1e9), (1.2, 1e9)], step=1, min_steps=3, tick=100.0)
    (ticks,) = best_split([offer], size_ticks=10_000_000)
    assert ticks == 10_000_000


def test_a_brokers_dearer_account_with_a_finer_step_is_chosen_when_it_fills_the_rest():
    # Broker 0's cheap account trades whole lots (10 ticks); its dearer one 0.1 lot. Broker 1 has 0.5 lot of depth.
    # 1.5 lots: the cheap account alone leaves half a lot unless broker 1 fills it; with broker 1 short of depth
    # (0.3 lot), only broker 0's fine account fills all 1.5 lots, at its dearer price.
    offers = [
        Offer(levels=[(1.00, 100)], step=10, min_steps=1, tick=1.0, group=0),  # broker 0, raw: whole lots
        Offer(levels=[(1.02, 100)], step=1, min_steps=1, tick=1.0, group=0),  # broker 0, standard: 0.1 lot
        Offer(levels=[(1.01, 3)], step=1, min_steps=1, tick=1.0, group=1),  # broker 1: 0.3 lot
    ]
    assert best_split(offers, size_ticks=15) == [0, 12, 3]
    # 2 lots: the raw account takes both whole lots, broker 1 nothing it cannot improve on.
    assert best_split(offers, size_ticks=20) == [20, 0, 0]


def test_a_split_never_takes_two_accounts_of_one_broker():
    # Two accounts quoting one broker's 10 units: together they would "fill" 20 from a book of 10.
    offers = [
        Offer(levels=[(1.00, 10)], step=1, min_steps=1, tick=1.0, group=7),
        Offer(levels=[(1.01, 10)], step=1, min_steps=1, tick=1.0, group=7),
    ]
    assert best_split(offers, size_ticks=20) == [10, 0]


def test_a_dominated_account_is_never_tried_and_the_answer_says_it_is_exact():
    offers = [
        Offer(levels=[(1.00, 50)], step=1, min_steps=1, tick=1.0, group=0),
        Offer(levels=[(1.05, 50)], step=2, min_steps=1, tick=1.0, group=0),  # dearer, coarser: dominated
        Offer(levels=[(1.01, 50)], step=1, min_steps=1, tick=1.0, group=1),
    ]
    result = split_solve(offers, size_ticks=60)
    assert result.exact
    assert result.ticks == [50, 0, 10]


def test_past_the_choice_limit_each_broker_is_improved_in_turn_and_says_it_is_not_proven():
    offers = [
        Offer(levels=[(1.00, 100)], step=10, min_steps=1, tick=1.0, group=0),
        Offer(levels=[(1.02, 100)], step=1, min_steps=1, tick=1.0, group=0),
        Offer(levels=[(1.01, 3)], step=1, min_steps=1, tick=1.0, group=1),
    ]
    result = split_solve(offers, size_ticks=15, exact_nodes=1)
    assert not result.exact
    assert result.ticks == [0, 12, 3]  # one change (broker 0's finer account) already fills it all


step_rule = st.sampled_from([(1, 1), (2, 1), (3, 1), (2, 2), (1, 3), (5, 1), (3, 2)])  # (step, minimum in steps)
book = st.lists(
    st.tuples(st.integers(min_value=0, max_value=40), st.integers(min_value=1, max_value=7)),  # (cost, ticks)
    min_size=1,
    max_size=4,
)


@settings(max_examples=400, deadline=None)
@given(
    books=st.lists(st.tuples(step_rule, book), min_size=1, max_size=4),
    size=st.integers(min_value=1, max_value=24),
    commission=st.lists(st.integers(min_value=0, max_value=5), min_size=4, max_size=4),
    groups=st.lists(st.sampled_from([None, 0, 1]), min_size=4, max_size=4),
)
def test_the_split_fills_the_most_there_is_and_of_those_costs_the_least(books, size, commission, groups):
    # Offers of one group are accounts of one broker: the split may take from one of them only.
    offers = []
    for i, ((step, min_steps), levels) in enumerate(books):
        # Costs per unit never fall along a book: sorted, plus the account's commission on every level.
        ordered = sorted(levels)
        offers.append(
            Offer(
                levels=[(1.0 + c / 100 + commission[i] / 1000, float(q)) for c, q in ordered],
                step=step,
                min_steps=min_steps,
                tick=1.0,
                group=groups[i],
            )
        )
    ticks = best_split(offers, size_ticks=size)
    assert all(on_grid(o, t) for o, t in zip(offers, ticks, strict=True))
    taking = [o.group for o, t in zip(offers, ticks, strict=True) if t > 0 and o.group is not None]
    assert len(taking) == len(set(taking))
    filled, cost = priced(offers, ticks)
    assert filled <= size
    best_filled, best_cost = brute_force(offers, size)
    assert filled == best_filled
    assert cost == pytest.approx(best_cost, rel=1e-12, abs=1e-12)


def test_past_the_block_budget_the_split_stays_on_grid_one_account_per_broker_and_says_it_is_not_proven():
    # Twelve brokers, two accounts each with a minimum above one step: thousands of sets of minimum blocks fit.
    offers = [
        Offer(levels=[(1.0 + (b * 7 % 5) / 100 + k / 1000, 30)], step=1, min_steps=3 + k, tick=1.0, group=b)
        for b in range(12)
        for k in range(2)
    ]
    result = split_solve(offers, size_ticks=40, exact_block_sets=8)
    assert not result.exact
    assert all(on_grid(o, t) for o, t in zip(offers, result.ticks, strict=True))
    taking = [o.group for o, t in zip(offers, result.ticks, strict=True) if t > 0]
    assert len(taking) == len(set(taking)) and sum(result.ticks) == 40
    # A smaller order has few sets that fit (two 3-step blocks at most): within the budget, solved exactly.
    assert split_solve(offers, size_ticks=7).exact
