"""The cheapest way to split one order across accounts, exactly (pure core: no Django).

The problem
-----------
Each account ``a`` offers depth: levels of (cost per unit, units), best first, where the cost per unit is the
signed price plus the account's commission per unit (lower is better on either side). Taking ``x`` units from it
costs ``C_a(x)``, the depth walked from the best level. The account takes only whole numbers of its lot step
``t_a`` at or above its minimum order ``m_a`` steps: ``x_a`` is 0 or ``k * t_a`` with ``m_a <= k``. Sizes are
counted in ticks (a fixed fraction of a lot, so every step is a whole number of them) and the order is ``N``
ticks. A split is one ``x_a`` per account with ``sum(x_a) <= N``; the best split fills the most, and of those
that fill the most, costs the least.

Why the answer is exact
-----------------------
1. **Marginal costs rise.** Levels are walked best first, so ``C_a`` is convex piecewise linear in ``x``.
   The cost of the ``j``-th step of ``t_a`` ticks, ``C_a(j t_a) - C_a((j - 1) t_a)``, is the average of the
   (non-decreasing) cost per unit over that step, so it is non-decreasing in ``j``.

2. **One step size: merging is optimal (the pool).** Take accounts that all have the step ``t`` and no minimum
   beyond one step. Let ``Phi_t(n)`` be the least cost of ``n`` steps in all from them. The ``n`` cheapest
   steps of the merged list (each account's steps in order, the lists merged by cost, ties by account) are a
   prefix of every account's list, by 1., so they are a feasible allocation; and no allocation of ``n`` steps
   can cost less than the sum of the ``n`` cheapest steps there are. So the merge gives ``Phi_t(n)`` for every
   ``n`` at once, and ``Phi_t`` is convex.

3. **A minimum order is a yes/no choice.** An account with a minimum of ``m_a > 1`` steps either takes nothing,
   or takes its first ``m_a`` steps as one block and then any number of further steps, whose costs still rise
   (1.). Given which such accounts take their block (the set ``A``), their further steps join the pool of their
   step size, so 2. still holds. Every ``A`` is tried.

4. **Several step sizes: a dynamic programme over totals.** Given ``A``, the pools of the step sizes other than
   the finest ``f`` are combined over the total ``S`` they take: ``best(S)`` is the least cost of any choice of
   ``n_t`` steps from each pool with ``sum(t n_t) = S`` (plus ``A``'s blocks); keeping only the cheapest way to
   reach each ``S`` loses nothing, because what follows depends on ``S`` alone. The finest pool then takes
   ``k = min(its capacity, (N - S) // f)`` steps: more of it never fills less, so the most filling choice for
   that ``S`` takes the most it can, at cost ``Phi_f(k)``.

   5. The coarse pool of the smallest step, when the finest step divides it, is not enumerated: for each ``S``
   the fill is non-decreasing in its steps ``n`` and, where it is at its most, the cost is convex in ``n``, so a
   bisection finds the best ``n`` (``_search``).

   Every split is reached: for any allocation, its ``A``, its totals per pool and its ``S`` give a candidate
   that fills at least as much (4.) and, filling as much, costs no more (2., 3.). The best candidate over all
   ``A`` and ``S`` is therefore the best split. ``execution/tests/test_execution_split.py`` checks this against
   every allocation of small books.

6. **One account per broker (groups).** Offers may carry a ``group`` (the broker): a split takes from at most
   one offer of a group, because a broker's accounts quote the same liquidity (an account's depth is the broker's
   book with the account's mark-up), so two accounts of one broker would count the same depth twice. Which
   account each broker uses is chosen with the split, not before it: an offer is dropped only when another offer
   of its group *dominates* it (accepts every size it accepts, has at least its depth up to the order, and costs
   no more at any size: compared at every corner of the two piecewise linear costs, which suffices). Replacing a
   dominated offer by its dominator in any split fills as much for no more, so nothing is lost. Every choice of
   one remaining offer per group is then solved by 1.-5. and the best kept: exact. Dominance leaves one or two
   offers per broker in practice (accounts differ by a constant mark-up or commission on the same depth, and
   only a different lot grid keeps a dearer one), so the choices are few; past ``EXACT_CHOICES`` of them the
   choice is improved one broker at a time from the caller's order until no single change helps
   (``SplitResult.exact`` is then False and the caller says so).

Work: the merge is linear in the levels; the programme is the number of totals times the steps each coarser
pool can take, the last of them by bisection; both times the sets of minimum blocks that fit in the order (listed
depth first, never those that do not fit), times the solves of 6. With the usual step sizes (one or two of them)
and few minimums that is a few dozen operations per solve. Past ``EXACT_NODES`` solves or ``EXACT_BLOCK_SETS`` sets
of blocks in all, the split is the best found and ``SplitResult.exact`` is False (the caller says so): a dozen
brokers with several accounts each, all with minimums above one step, reach it on large orders.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass

COST_EPSILON = 1e-12  # relative: two costs closer than this are the same cost (float noise)
EXACT_NODES = 200  # solves the search of 6. may take; past them the best found is improved group by group
# Sets of minimum blocks (3.) all solves together may try: each is one pass of 4. Many accounts with a minimum above
# one step (28 of them, say) have thousands of sets that fit an order; past this the split is not proven exact.
EXACT_BLOCK_SETS = 512


@dataclass(frozen=True)
class Offer:
    """One account's side of the book as the split sees it."""

    levels: Sequence[tuple[float, float]]  # (cost per unit, units), best first: the cost never falls
    step: int  # ticks per lot step (> 0)
    min_steps: int  # the minimum order in steps (>= 1)
    tick: float  # units per tick
    group: int | None = None  # offers of one group share its liquidity: a split takes from one of them (6.)


@dataclass
class _Curve:
    """C(x): the cost of the first ``units`` of an offer's depth, by prefix sums over its levels."""

    costs: list[float]
    bounds: list[float]  # cumulative units at the end of each level
    paid: list[float]  # cumulative cost at the end of each level

    @staticmethod
    def of(levels: Sequence[tuple[float, float]]) -> _Curve:
        costs, bounds, paid = [], [], []
        total = spent = 0.0
        for cost, qty in levels:
            total += qty
            spent += cost * qty
            costs.append(cost)
            bounds.append(total)
            paid.append(spent)
        return _Curve(costs, bounds, paid)

    @property
    def depth(self) -> float:
        return self.bounds[-1] if self.bounds else 0.0

    def cost_to(self, units: float) -> float:
        if units <= 0 or not self.bounds:
            return 0.0
        k = min(bisect.bisect_left(self.bounds, units), len(self.bounds) - 1)
        start = self.bounds[k - 1] if k else 0.0
        return (self.paid[k - 1] if k else 0.0) + self.costs[k] * (units - start)


def _whole(x: float) -> int:
    """floor(x), forgiving float noise just under a whole number (2.9999999999999996 is 3)."""
    return math.floor(x + max(1e-9, abs(x) * 1e-12))


@dataclass
class _Account:
    index: int
    step: int
    min_steps: int
    cap: int  # the most steps its depth and the order allow
    curve: _Curve
    units_per_step: float

    def cost(self, steps: int) -> float:
        return self.curve.cost_to(steps * self.units_per_step)

    def runs(self, start: int) -> list[tuple[float, int]]:
        """Its steps from ``start`` to ``cap`` as (cost per step, how many), in order. Steps inside one level
        cost the same and are counted together (a deep book at 0.001 lot has millions of steps); a step across a
        level boundary is one run at its blended cost. Rounding can make a blended step a hair cheaper than the
        level before it: costs are clamped to never fall, as 1. says they do not."""
        out: list[tuple[float, int]] = []
        bounds, costs, u = self.curve.bounds, self.curve.costs, self.units_per_step
        j, k, last = start, 0, -math.inf
        while j < self.cap:
            u0 = j * u
            while k < len(bounds) - 1 and bounds[k] <= u0 + max(1e-9, u0 * 1e-12):
                k += 1
            inside = min(_whole((bounds[k] - u0) / u), self.cap - j)
            if inside >= 1:
                cost, count = costs[k] * u, inside
            else:
                cost, count = self.curve.cost_to(u0 + u) - self.curve.cost_to(u0), 1
            last = max(last, cost)
            out.append((last, count))
            j += count
        return out


@dataclass
class _Pool:
    """Phi_t: the merged steps of every account of one step size (2.), with prefix sums over the runs."""

    step: int
    runs: list[tuple[float, int, int]]  # (cost per step, account index, steps), cheapest first
    counts: list[int]  # cumulative steps
    spent: list[float]  # cumulative cost

    @staticmethod
    def of(step: int, parts: list[tuple[int, list[tuple[float, int]]]]) -> _Pool:
        return _Pool.merged(step, _sorted_runs(parts))

    @staticmethod
    def merged(step: int, runs: Sequence[tuple[float, int, int, int]]) -> _Pool:
        """From runs (cost, account, position, steps) already in order."""
        merged = [(cost, index, count) for cost, index, _, count in runs]
        counts, spent, n, total = [], [], 0, 0.0
        for cost, _, count in merged:
            n += count
            total += cost * count
            counts.append(n)
            spent.append(total)
        return _Pool(step, merged, counts, spent)

    @property
    def cap(self) -> int:
        return self.counts[-1] if self.counts else 0

    def cost(self, n: int) -> float:
        if n <= 0:
            return 0.0
        k = bisect.bisect_left(self.counts, n)
        before_n = self.counts[k - 1] if k else 0
        return (self.spent[k - 1] if k else 0.0) + self.runs[k][0] * (n - before_n)

    def allocate(self, n: int, into: dict[int, int]) -> None:
        for _, index, count in self.runs:
            if n <= 0:
                return
            take = min(count, n)
            into[index] = into.get(index, 0) + take
            n -= take


@dataclass(frozen=True)
class SplitResult:
    ticks: list[int]  # per offer, 0 for one that takes nothing
    exact: bool  # False only when the choices of 6. were too many to try one by one
    choices: int  # how many splits were solved to find it


def _sorted_runs(parts: list[tuple[int, list[tuple[float, int]]]]) -> list[tuple[float, int, int, int]]:
    """Runs of several accounts as (cost, account, position, steps), cheapest first: sorting by (cost, account,
    position) keeps each account's runs in their order, since they never fall."""
    return sorted((cost, index, pos, count) for index, runs in parts for pos, (cost, count) in enumerate(runs))


def best_split(offers: Sequence[Offer], *, size_ticks: int) -> list[int]:
    """Ticks each offer takes in the split that fills the most of ``size_ticks`` and, of those, costs the least,
    taking from at most one offer of each group (see the module's docstring for why it is exact). 0 for an offer
    that takes nothing."""
    return split_solve(offers, size_ticks=size_ticks).ticks


def split_solve(
    offers: Sequence[Offer],
    *,
    size_ticks: int,
    exact_nodes: int = EXACT_NODES,
    exact_block_sets: int = EXACT_BLOCK_SETS,
) -> SplitResult:
    """best_split with how it was found (6.): branch and bound over which offer of each group the split uses,
    exact within ``exact_nodes`` solves and ``exact_block_sets`` sets of minimum blocks (3.); past them the best
    split found so far, improved one group at a time, and not proven exact. Within a group, offers earlier in
    ``offers`` are preferred at equal fill and cost."""
    groups: dict[object, list[int]] = {}
    for index, offer in enumerate(offers):
        key = ("group", offer.group) if offer.group is not None else ("alone", index)
        groups.setdefault(key, []).append(index)
    members = [
        _undominated([i for i in m if _usable(offers[i], size_ticks)], offers, size_ticks) for m in groups.values()
    ]
    curves = {i: _Curve.of(offers[i].levels) for m in members for i in m}
    solved = sets_used = 0
    truncated = False

    def solve(allowed: Sequence[int]) -> tuple[tuple[int, float], list[int]]:
        nonlocal solved, sets_used, truncated
        solved += 1
        # Past the budget each solve still tries a few sets (the fewest blocks first), so the answer stays quick.
        ticks, used, cut = _best_split(
            [offers[i] for i in allowed], size_ticks=size_ticks, max_sets=max(16, exact_block_sets - sets_used)
        )
        sets_used += used
        truncated = truncated or cut
        out = [0] * len(offers)
        for i, t in zip(allowed, ticks, strict=True):
            out[i] = t
        cost = sum(curves[i].cost_to(t * offers[i].tick) for i, t in zip(allowed, ticks, strict=True))
        return (sum(ticks), cost), out

    # The split over every offer at once (several per group allowed) bounds every split below it: a branch whose
    # bound is no better than the best split found is dropped. A bound that takes one offer per group is a split.
    best: tuple[tuple[int, float], list[int]] | None = None
    complete = True

    def search(choice: list[list[int]]) -> None:
        nonlocal best, complete
        if solved >= exact_nodes or sets_used >= exact_block_sets or truncated:
            complete = False
            return
        key, ticks = solve(sorted(i for m in choice for i in m))
        if best is not None and not _better(key, best[0]):
            return
        crowded = next((g for g, m in enumerate(choice) if sum(1 for i in m if ticks[i]) > 1), None)
        if crowded is None:
            best = (key, ticks)
            return
        # One branch per offer the crowded group may use; the offers the bound leaned on most first.
        for i in sorted(choice[crowded], key=lambda i: (-ticks[i], i)):
            search([*choice[:crowded], [i], *choice[crowded + 1 :]])

    search([m for m in members if m])
    if complete and not truncated:
        return SplitResult(best[1] if best is not None else [0] * len(offers), exact=True, choices=solved)
    # Out of solves: improve the best split found (or every group's first offer) one group at a time.
    current = [m[0] if best is None else next((i for i in m if best[1][i]), m[0]) for m in members if m]
    options = [m for m in members if m]
    found = solve(current)
    if best is None or _better(found[0], best[0]):
        best = found
    improved, rounds = True, 0
    while improved and rounds < 3:  # bounded: each round is a solve per account
        improved, rounds = False, rounds + 1
        for g, group_options in enumerate(options):
            for candidate in group_options:
                if candidate == current[g]:
                    continue
                trial = [*current[:g], candidate, *current[g + 1 :]]
                found = solve(sorted(trial))
                if _better(found[0], best[0]):
                    best, current, improved = found, trial, True
    return SplitResult(best[1], exact=False, choices=solved)


def _usable(offer: Offer, size_ticks: int) -> bool:
    """The offer can take at least its minimum order within the order and its depth."""
    units_per_step = offer.step * offer.tick
    if units_per_step <= 0 or offer.min_steps < 1:
        return False
    cap = min(_whole(_Curve.of(offer.levels).depth / units_per_step), size_ticks // offer.step)
    return cap >= offer.min_steps


def _undominated(members: list[int], offers: Sequence[Offer], size_ticks: int) -> list[int]:
    """The members no other member dominates (6.), in their order; of two equal offers the first stays."""
    kept: list[int] = []
    for i in members:
        if any(_dominates(offers[k], offers[i], size_ticks) for k in kept):
            continue
        kept = [k for k in kept if not _dominates(offers[i], offers[k], size_ticks)] + [i]
    return kept


def _dominates(b: Offer, a: Offer, size_ticks: int) -> bool:
    """Every size ``a`` may take in the order ``b`` may take too, with the depth for it, for no more."""
    if a.tick != b.tick or a.step % b.step or b.step * b.min_steps > a.step * a.min_steps:
        return False
    ca, cb = _Curve.of(a.levels), _Curve.of(b.levels)
    reach = min(ca.depth, size_ticks * a.tick)
    if cb.depth < reach - max(1e-9, reach * 1e-12):
        return False
    # Both costs are piecewise linear from 0: comparing them at every corner up to ``reach`` compares them there.
    corners = sorted({reach, *(x for x in (*ca.bounds, *cb.bounds) if x < reach)})
    return all(cb.cost_to(x) <= ca.cost_to(x) + COST_EPSILON * max(1.0, abs(ca.cost_to(x))) for x in corners)


def _best_split(offers: Sequence[Offer], *, size_ticks: int, max_sets: int) -> tuple[list[int], int, bool]:
    """1.-5.: the best split over offers that may all take part (no groups), with how many sets of minimum blocks
    it tried and whether it had to stop at ``max_sets`` of them (then it is the best over those, not proven)."""
    accounts: list[_Account] = []
    for index, offer in enumerate(offers):
        curve = _Curve.of(offer.levels)
        units_per_step = offer.step * offer.tick
        cap = min(_whole(curve.depth / units_per_step), size_ticks // offer.step) if units_per_step > 0 else 0
        if cap >= offer.min_steps >= 1:
            accounts.append(_Account(index, offer.step, offer.min_steps, cap, curve, units_per_step))
    out = [0] * len(offers)
    if not accounts:
        return out, 0, False
    finest = min(a.step for a in accounts)
    blocked = [a for a in accounts if a.min_steps > 1]
    free_runs = {a.index: a.runs(0) for a in accounts if a.min_steps == 1}
    after_block = {a.index: a.runs(a.min_steps) for a in blocked}
    block_cost = {a.index: a.cost(a.min_steps) for a in blocked}

    # The accounts without a minimum block are in every set's pools: merged once, and each set's blocked accounts
    # merged into them (a linear merge of sorted runs, the same order as sorting them all).
    free_parts: dict[int, list[tuple[int, list[tuple[float, int]]]]] = {}
    for a in accounts:
        if a.min_steps == 1:
            free_parts.setdefault(a.step, []).append((a.index, free_runs[a.index]))
    free_sorted = {step: _sorted_runs(p) for step, p in free_parts.items()}
    free_pools = {step: _Pool.merged(step, runs) for step, runs in free_sorted.items()}

    best_key: tuple[int, float] | None = None
    best_alloc: dict[int, int] = {}
    block_sets, cut = _blocks(blocked, size_ticks, limit=max_sets)
    for active in block_sets:  # 3.: which accounts take their minimum block
        start = sum(a.min_steps * a.step for a in active)
        base = sum(block_cost[a.index] for a in active)
        extra: dict[int, list[tuple[int, list[tuple[float, int]]]]] = {}
        for a in active:
            extra.setdefault(a.step, []).append((a.index, after_block[a.index]))
        pools = dict(free_pools)
        for step, p in extra.items():
            pools[step] = _Pool.merged(step, list(heapq.merge(free_sorted.get(step, []), _sorted_runs(p))))
        fine = pools.get(finest)
        coarse = [pools[s] for s in sorted(pools, reverse=True) if s != finest]
        # 5.: the coarse pool whose step the finest divides is searched, not enumerated (see _search).
        last = coarse.pop() if coarse and fine is not None and coarse[-1].step % finest == 0 else None

        # 4.: the cheapest way to reach each total S from the coarser pools, with the choice that got there.
        reach: dict[int, tuple[float, tuple[int, ...]]] = {start: (base, ())}
        for pool in coarse:
            nxt: dict[int, tuple[float, tuple[int, ...]]] = {}
            for total, (cost, chosen) in reach.items():
                most = min(pool.cap, (size_ticks - total) // pool.step)
                for n in range(most + 1):
                    s = total + n * pool.step
                    c = cost + pool.cost(n)
                    if s not in nxt or c < nxt[s][0]:
                        nxt[s] = (c, (*chosen, n))
            reach = nxt
        for total, (cost, chosen) in sorted(reach.items()):
            n_last = _search(last, fine, rest=size_ticks - total) if last is not None and fine is not None else 0
            taken = total + (n_last * last.step if last is not None else 0)
            k = min(fine.cap, (size_ticks - taken) // finest) if fine is not None else 0
            key = (
                taken + k * finest,
                cost + (last.cost(n_last) if last is not None else 0.0) + (fine.cost(k) if fine is not None else 0.0),
            )
            if best_key is None or _better(key, best_key):
                best_key = key
                alloc = {a.index: a.min_steps for a in active}
                for pool, n in zip(coarse, chosen, strict=True):
                    pool.allocate(n, alloc)
                if last is not None:
                    last.allocate(n_last, alloc)
                if fine is not None:
                    fine.allocate(k, alloc)
                best_alloc = alloc
    for a in accounts:
        out[a.index] = best_alloc.get(a.index, 0) * a.step
    return out, len(block_sets), cut


def _blocks(blocked: list[_Account], size_ticks: int, *, limit: int) -> tuple[list[list[_Account]], bool]:
    """Every set of accounts whose minimum blocks fit in the order together (3.), found depth first so that sets
    that cannot fit are never listed (fourteen 1-lot minimums and a 1.05-lot order: 15 sets, not 2 ** 14); at most
    ``limit`` of them, the empty set first, and whether some were left out."""
    out: list[list[_Account]] = [[]]

    def grow(i: int, chosen: list[_Account], used: int) -> bool:
        """False once the limit is reached."""
        for j in range(i, len(blocked)):
            block = blocked[j].min_steps * blocked[j].step
            if used + block > size_ticks:
                continue
            if len(out) >= limit:
                return False
            out.append([*chosen, blocked[j]])
            if not grow(j + 1, out[-1], used + block):
                return False
        return True

    complete = grow(0, [], 0)
    return out, not complete


def _search(pool: _Pool, fine: _Pool, *, rest: int) -> int:
    """Steps of ``pool`` that, with the most of ``fine`` that still fits in ``rest`` ticks, fill the most and of
    those cost the least, when the fine step divides the pool's (5. in the module's docstring).

    With ``r = pool.step / fine.step`` and ``Q = rest // fine.step``, ``n`` steps of the pool leave room for
    ``Q - r n`` fine steps, so the fill is ``min(pool.step n + fine.step fine.cap, fine.step Q)``: it never falls
    as ``n`` grows, and it is at its most from ``n0`` on. There the fine pool takes ``Q - r n`` steps and the cost
    ``Phi_pool(n) + Phi_fine(Q - r n)`` is convex in ``n`` (a convex function plus a convex one of an affine
    one), so the first ``n`` from which it stops falling is a least one: found by bisection."""
    r, q = pool.step // fine.step, rest // fine.step
    most = min(pool.cap, rest // pool.step)
    if pool.step * most + fine.step * fine.cap <= fine.step * q:
        return most  # the fill still grows at the end: only the most fills the most
    lo = max(0, -(-(q - fine.cap) // r))  # n0: the first n at which the fine pool no longer runs out

    def cost(n: int) -> float:
        return pool.cost(n) + fine.cost(q - r * n)

    hi = most
    while lo < hi:
        mid = (lo + hi) // 2
        if cost(mid + 1) < cost(mid) - COST_EPSILON * max(1.0, abs(cost(mid))):
            lo = mid + 1
        else:
            hi = mid
    return lo


def _better(a: tuple[int, float], b: tuple[int, float]) -> bool:
    """Fills more, or as much for less (a difference within float noise is no difference)."""
    if a[0] != b[0]:
        return a[0] > b[0]
    return a[1] < b[1] - COST_EPSILON * max(1.0, abs(b[1]))
