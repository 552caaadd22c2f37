"""The alert evaluator's core, pure Python: which alerts a quote, a feed status, a new score or a report sets off.

Spread alerts are indexed per broker and instrument ("*": any instrument) with their thresholds sorted, so a
quote costs a dict lookup and a binary search: the alerts whose threshold lies below the spread are exactly
the first `idx` of the list, and only those between the previous and the new position changed side. That
keeps the cost per quote flat however many alerts sit on one instrument.

An episode is one stretch above the threshold (or one feed outage). It notifies once, after `for_s` seconds
above, and not again within the cool-down of the alert's previous notification. Times are microseconds.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from dataclasses import dataclass, field

SPREAD_ABOVE = "spread_above"
FEED_DOWN = "feed_down"
SCORE_MOVE = "score_move"
EVENT_REPORT = "event_report"
ANY = "*"


ACCOUNT_SEP = "@"  # "broker@account": the ladders of an account measured on its own feed (slugs have no "@")


def _account_key(broker: str, account_id: int) -> str:
    return f"{broker}{ACCOUNT_SEP}{account_id}" if account_id else broker


@dataclass(frozen=True, slots=True)
class Rule:
    id: int
    user_id: int
    kind: str
    brokers: frozenset[str]  # the broker, or every broker of the watchlist
    instruments: frozenset[str]  # empty: any instrument
    threshold_pips: float = 0.0
    for_s: float = 0.0
    score_points: float = 0.0
    # Spread alerts on one account: the live channels carry each broker's feed account, and an account priced
    # apart from it is the feed spread plus the published mark-up difference (as the cost table derives it)...
    account: str = ""
    offset_pips: float = 0.0
    # ...unless the account has a feed of its own: then its own quotes (account_id, on_account_quote) are
    # compared, and offset_pips is 0.
    account_id: int = 0


@dataclass(frozen=True, slots=True)
class Fired:
    rule_id: int
    user_id: int
    kind: str
    broker: str
    instrument: str
    episode: str
    at_us: int
    source_ts_us: int  # when what set it off was ingested (the delay is measured from here)
    message: str
    value: float | None = None


@dataclass(slots=True)
class _Episode:
    start_us: int
    fired: bool = False


@dataclass(slots=True)
class _Ladder:
    """The spread alerts of one broker and instrument, by threshold; `above`: how many are above now."""

    thresholds: list[float]
    rules: list[Rule]
    above: int | None = None  # None: not known yet (after a reload)


@dataclass
class Engine:
    cooldown_s: float
    pip_sizes: dict[str, float] = field(default_factory=dict)
    rules: dict[int, Rule] = field(default_factory=dict)
    _spread: dict[str, list[Rule]] = field(default_factory=dict)  # "broker:instrument" or "broker:*"
    _ladders: dict[str, _Ladder] = field(default_factory=dict)  # concrete "broker:instrument"
    _feed: dict[str, list[Rule]] = field(default_factory=dict)
    _score: dict[str, list[Rule]] = field(default_factory=dict)
    _report: dict[str, list[Rule]] = field(default_factory=dict)
    _episodes: dict[tuple[int, str], _Episode] = field(default_factory=dict)
    _timers: list[tuple[int, int, str, int]] = field(default_factory=list)  # due, rule id, key, episode start
    _last_fired: dict[int, int] = field(default_factory=dict)
    _last_spread: dict[str, tuple[float, int]] = field(default_factory=dict)  # key -> (pips, ts)

    # -- rules -----------------------------------------------------------------------------------
    def load(self, rules: list[Rule], *, pip_sizes: dict[str, float]) -> None:
        """Replace the rules. Episodes under way of rules that remain are kept (no second notification)."""
        self.pip_sizes = dict(pip_sizes)
        self.rules = {r.id: r for r in rules}
        self._spread, self._feed, self._score, self._report = {}, {}, {}, {}
        self._ladders = {}
        by_kind = {
            SPREAD_ABOVE: self._spread,
            FEED_DOWN: self._feed,
            SCORE_MOVE: self._score,
            EVENT_REPORT: self._report,
        }
        for rule in rules:
            target = by_kind.get(rule.kind)
            if target is None:
                continue
            for broker in rule.brokers:
                if rule.kind == SPREAD_ABOVE:
                    fed = _account_key(broker, rule.account_id)
                    for instrument in rule.instruments or (ANY,):
                        target.setdefault(f"{fed}:{instrument}", []).append(rule)
                else:
                    target.setdefault(broker, []).append(rule)
        self._episodes = {k: e for k, e in self._episodes.items() if k[0] in self.rules}
        self._last_fired = {k: v for k, v in self._last_fired.items() if k in self.rules}

    def _ladder(self, key: str) -> _Ladder | None:
        ladder = self._ladders.get(key)
        if ladder is None:
            broker, _, _instrument = key.partition(":")
            rules = self._spread.get(key, []) + self._spread.get(f"{broker}:{ANY}", [])
            # Against the feed's spread: an account's alert goes off when feed + offset > threshold.
            rules.sort(key=lambda r: r.threshold_pips - r.offset_pips)
            ladder = self._ladders[key] = _Ladder([r.threshold_pips - r.offset_pips for r in rules], rules)
        return ladder if ladder.rules else None

    # -- inputs ----------------------------------------------------------------------------------
    def on_quote(self, broker: str, instrument: str, bid: float, ask: float, ts_us: int, now_us: int) -> list[Fired]:
        """A quote of a broker's feed account (the live channels)."""
        return self._on_spread(f"{broker}:{instrument}", broker, instrument, bid, ask, ts_us, now_us)

    def on_account_quote(
        self, broker: str, account_id: int, instrument: str, bid: float, ask: float, ts_us: int, now_us: int
    ) -> list[Fired]:
        """A quote of one of a broker's accounts measured on its own feed (marketdata.keys.account_channel)."""
        key = f"{_account_key(broker, account_id)}:{instrument}"
        return self._on_spread(key, broker, instrument, bid, ask, ts_us, now_us)

    def _on_spread(
        self, key: str, broker: str, instrument: str, bid: float, ask: float, ts_us: int, now_us: int
    ) -> list[Fired]:
        ladder = self._ladder(key)
        if ladder is None:
            return []
        pip = self.pip_sizes.get(instrument)
        if not pip:
            return []
        pips = (ask - bid) / pip
        self._last_spread[key] = (pips, ts_us)
        idx = bisect_left(ladder.thresholds, pips)  # rules[:idx] have threshold < pips: above
        prev = ladder.above
        ladder.above = idx
        if prev == idx:
            return []
        out: list[Fired] = []
        if prev is None:
            for i, rule in enumerate(ladder.rules):
                if i < idx:
                    self._start(rule, key, instrument, broker, pips, ts_us, now_us, out)
                else:
                    self._episodes.pop((rule.id, key), None)
        elif idx > prev:
            for rule in ladder.rules[prev:idx]:
                self._start(rule, key, instrument, broker, pips, ts_us, now_us, out)
        else:
            for rule in ladder.rules[idx:prev]:
                self._episodes.pop((rule.id, key), None)
        return out

    def _start(
        self, rule: Rule, key: str, instrument: str, broker: str, pips: float, ts_us: int, now_us: int, out: list[Fired]
    ) -> None:
        ek = (rule.id, key)
        if ek in self._episodes:
            return
        episode = self._episodes[ek] = _Episode(start_us=now_us)
        if rule.for_s <= 0:
            self._fire_spread(rule, key, broker, instrument, episode, pips, ts_us, now_us, out)
        else:
            heapq.heappush(self._timers, (now_us + int(rule.for_s * 1e6), rule.id, key, now_us))

    def _fire_spread(
        self,
        rule: Rule,
        key: str,
        broker: str,
        instrument: str,
        episode: _Episode,
        pips: float,
        ts_us: int,
        now_us: int,
        out: list[Fired],
    ) -> None:
        episode.fired = True
        last = self._last_fired.get(rule.id)
        if last is not None and now_us - last < self.cooldown_s * 1e6:
            return  # within the cool-down: the episode counts as notified (checked before any formatting)
        held = f" for {rule.for_s:g} s" if rule.for_s > 0 else ""
        pips += rule.offset_pips  # the feed's spread -> the alert's account's
        where = f"{broker} {rule.account} account" if rule.account else broker
        message = f"{where} {instrument} spread {pips:.1f} pips, above {rule.threshold_pips:g}{held}"
        self._fire(rule, broker, instrument, f"{key}@{episode.start_us}", ts_us, now_us, message, pips, out)

    def on_timer(self, now_us: int) -> list[Fired]:
        """Spread alerts whose episode has now lasted long enough."""
        out: list[Fired] = []
        timers = self._timers
        while timers and timers[0][0] <= now_us:
            _, rule_id, key, start = heapq.heappop(timers)
            episode = self._episodes.get((rule_id, key))
            rule = self.rules.get(rule_id)
            if episode is None or rule is None or episode.start_us != start or episode.fired:
                continue
            fed, _, instrument = key.partition(":")
            broker = fed.partition(ACCOUNT_SEP)[0]
            pips, ts = self._last_spread.get(key, (rule.threshold_pips, now_us))
            self._fire_spread(rule, key, broker, instrument, episode, pips, ts, now_us, out)
        return out

    def on_status(self, broker: str, status: str, since_us: int, now_us: int) -> list[Fired]:
        out: list[Fired] = []
        for rule in self._feed.get(broker, ()):
            ek = (rule.id, broker)
            if status == "up":
                self._episodes.pop(ek, None)
            elif ek not in self._episodes:
                episode = self._episodes[ek] = _Episode(start_us=since_us or now_us, fired=True)
                message = f"{broker} feed is {status}"
                self._fire(rule, broker, "", f"feed:{broker}@{episode.start_us}", now_us, now_us, message, None, out)
        return out

    def on_score(self, broker: str, old: float, new: float, score_id: int, now_us: int) -> list[Fired]:
        out: list[Fired] = []
        move = new - old
        for rule in self._score.get(broker, ()):
            if abs(move) >= rule.score_points:
                message = f"{broker} trust score moved {move:+.1f} points to {new:.1f}"
                self._fire(rule, broker, "", f"score:{score_id}", now_us, now_us, message, new, out)
        return out

    def on_report(self, broker: str, report_id: str, title: str, now_us: int) -> list[Fired]:
        out: list[Fired] = []
        for rule in self._report.get(broker, ()):
            message = f"New event report for {broker}: {title}"[:300]
            self._fire(rule, broker, "", f"report:{report_id}", now_us, now_us, message, None, out)
        return out

    def _fire(
        self,
        rule: Rule,
        broker: str,
        instrument: str,
        episode: str,
        source_ts: int,
        now_us: int,
        message: str,
        value: float | None,
        out: list[Fired],
    ) -> None:
        last = self._last_fired.get(rule.id)
        if last is not None and now_us - last < self.cooldown_s * 1e6:
            return  # within the cool-down: the episode counts as notified
        self._last_fired[rule.id] = now_us
        out.append(
            Fired(rule.id, rule.user_id, rule.kind, broker, instrument, episode, now_us, source_ts, message, value)
        )
