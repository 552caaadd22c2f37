"""`/api/v1/`: the site's measurements as JSON and CSV, from the same selectors as the pages.

Parameters are declared with types and patterns, so ninja validates them and documents them in the
OpenAPI schema (422 with a message per field); values that need the database to judge (an unknown
regulator, an unknown broker) are checked by the pages' own forms and answer 400 or 404. Errors are
always JSON: see api/errors.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, TypeVar

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from ninja import Field, NinjaAPI, Query, Router, Schema
from ninja.errors import HttpError
from ninja.params import functions as params
from ninja.security import APIKeyHeader
from pydantic import TypeAdapter, field_validator
from pydantic_core import to_json

from api import errors
from api import selectors as api_selectors
from api.http import cached_json, csv_doc, json_or_csv, live_csv, streamed_csv
from api.schemas import (
    ACCOUNTS_CSV,
    COMPARE_CSV,
    COSTS_CSV,
    DAILY_SCORES_CSV,
    DIRECTORY_CSV,
    EVENTS_CSV,
    EXECUTION_CSV,
    EXECUTION_CSV_FIELDS,
    LEVERAGES,
    LICENCES_CSV,
    METHODOLOGY_COMPANY_TYPES_CSV,
    METHODOLOGY_COMPONENTS_CSV,
    METHODOLOGY_REFERENCE_SPREADS_CSV,
    METHODOLOGY_STATUSES_CSV,
    METHODOLOGY_TIERS_CSV,
    METHODOLOGY_TRANSPARENCY_CSV,
    RELEASES_CSV,
    REPORT_CSV,
    REPORTS_CSV,
    SCORES_CSV,
    SESSION_PERCENTILES_CSV,
    SLUG_PATTERN,
    SPREAD_HOURS_CSV,
    SYMBOL_PATTERN,
    VALIDATION_CSV,
    AccountOut,
    BrokerDetailOut,
    BrokerOut,
    BrokerReleaseOut,
    CompareCellOut,
    CompareOut,
    CompareRowOut,
    CostsOut,
    DailyScoreOut,
    ErrorOut,
    EventOut,
    ExecutionOut,
    FeesOut,
    Format,
    HourOut,
    InstrumentOut,
    LicenceOut,
    LiveOut,
    LiveQuoteOut,
    MethodologyComponentOut,
    MethodologyPointsOut,
    ReportInstrumentOut,
    ReportOut,
    ReportRowOut,
    ReportSummaryOut,
    ScoreOut,
    SessionPercentilesOut,
    Sort,
    SpreadHistoryOut,
    SpreadHoursOut,
    SpreadOut,
    SpreadType,
    ValidationOut,
    ValidationScenarioOut,
    daily_score_csv_row,
    directory_csv_row,
    event_csv_row,
    report_summary_csv_row,
    score_csv_row,
)
from api.selectors import api_key_user_id
from api.stream import Window
from api.throttling import API_KEY_HEADER, RedisRateThrottle
from brokers import selectors as broker_selectors
from brokers.forms import MAX_COMPARE, DirectoryFilterForm, parse_compare
from brokers.models import AccountType, Broker, Instrument
from common import cachetags, metrics
from events import selectors as event_selectors
from events.models import EventReport
from execution import selectors as execution_selectors
from execution.forms import DEFAULT_UNIT, OrderForm
from live import board as live_board
from marketdata import selectors as market_selectors
from marketdata.selectors import SPREAD_WINDOWS
from trustmetrics import selectors as trust_selectors
from trustmetrics.methodology import METHODOLOGY
from trustmetrics.models import TrustScore
from trustmetrics.selectors import MethodologyRow, MethodologyTables


class ApiKeyAuth(APIKeyHeader):
    param_name = API_KEY_HEADER

    def authenticate(self, request: HttpRequest, key: str | None) -> int | None:
        return api_key_user_id(raw=key or "")


api = NinjaAPI(
    title="BrokerWatch API",
    version="1",
    description=(
        "Measured spreads, TrustMetrics scores and broker facts, with the same figures as the site's pages. "
        "Anonymous requests are rate-limited; send an API key (create one on your account page) in the "
        f"`{API_KEY_HEADER}` header for a higher limit and for live quotes. Past the limit: 429 with Retry-After. "
        "Tables are also available as CSV with `format=csv`."
    ),
    urls_namespace="api",
    openapi_url="/openapi.json",
    docs_url="/docs",
    throttle=[RedisRateThrottle()],
)
errors.install(api)

public = Router(tags=["brokers"])


def _error_responses(*codes: int) -> dict[int, type[ErrorOut]]:
    return dict.fromkeys(codes, ErrorOut)


class FormatQuery(Schema):
    format: Format = "json"


# -- brokers ---------------------------------------------------------------------------------------


class DirectoryQuery(Schema):
    regulator: str = Field("", max_length=40, description="Regulator slug, e.g. fca: an active licence from it.")
    tier: int | None = Field(None, ge=1, le=3, description="An active licence from a regulator of this tier (1-3).")
    platform: str = Field("", max_length=60, description="Platform slug, e.g. mt5.")
    instrument: str = Field("", max_length=20, description="Canonical symbol quoted, e.g. EURUSD.")
    spread_type: SpreadType | Literal[""] = Field("", description="An account of this kind: raw or standard.")
    min_leverage: int | None = Field(
        None, description="Maximum retail leverage at least 1:x.", json_schema_extra={"enum": list(LEVERAGES)}
    )
    max_deposit: Decimal | None = Field(
        None, ge=0, le=1_000_000, allow_inf_nan=False, description="Minimum deposit at most this many USD."
    )
    max_cost: Decimal | None = Field(
        None,
        ge=0,
        le=10_000,
        allow_inf_nan=False,
        description="All-in EURUSD cost at most this many USD per lot round turn (cheapest account).",
    )
    funding: str = Field("", max_length=60, description="Funding method slug, e.g. card.")
    negative_balance_protection: bool = Field(False, description="Only brokers with negative balance protection.")
    segregated_funds: bool = Field(False, description="Only brokers that segregate client funds.")
    include_suspended: bool = Field(False, description="Also brokers whose status is suspended.")
    sort: Sort = Field(
        "score", description="score (highest first), deposit (lowest first), name, or cost (all-in EURUSD, lowest)."
    )
    format: Format = "json"

    @field_validator("min_leverage")
    @classmethod
    def _one_of_the_pages_leverages(cls, value: int | None) -> int | None:
        # An enum in the schema; a query string arrives as text, which a Literal of ints would refuse.
        if value is not None and value not in LEVERAGES:
            raise ValueError(f"Choose one of {', '.join(map(str, LEVERAGES))}.")
        return value


@public.get(
    "/brokers",
    response={200: list[BrokerOut], **_error_responses(400, 422, 429)},
    summary="Brokers, with the directory's filters and sorts",
    openapi_extra=csv_doc(DIRECTORY_CSV),
)
def brokers_list(request: HttpRequest, query: Query[DirectoryQuery]) -> HttpResponseBase:
    # A list as long as the directory (its cost sort is worked out in Python on every broker): cached whole.
    def rows() -> tuple[list[BrokerOut], list[str]]:
        # The directory page's own form judges the values; inside rows(), so a cached answer skips it
        # (an error is raised before anything is stored, so errors are never cached).
        form = DirectoryFilterForm(
            {k: v for k, v in query.dict().items() if k != "format" and v not in (None, "")},
            choices=broker_selectors.filter_choices(),
        )
        if not form.is_valid():
            raise errors.FieldErrors(form.errors)
        found = broker_selectors.broker_directory(filters=form.filters())
        return [BrokerOut.of(e.broker, e.cost) for e in found], [cachetags.BROKER_LIST]

    return json_or_csv(
        request,
        fmt=query.format,
        build=rows,
        csv_rows=lambda out: map(directory_csv_row, out),
        columns=DIRECTORY_CSV,
        filename="brokers.csv",
        params=DirectoryQuery.model_fields,
    )


class CompareQuery(Schema):
    brokers: str = Field(
        ...,
        max_length=500,
        pattern=r"^[-a-zA-Z0-9_, ]+$",
        description=f"2 to {MAX_COMPARE} broker slugs separated by commas, as in the compare page's address.",
    )
    format: Format = "json"


def _compare_value(value: Any) -> float | int | str | bool | None:
    return float(value) if isinstance(value, Decimal) else value


@public.get(
    "/compare",
    response={200: CompareOut, **_error_responses(400, 422, 429)},
    summary="The compare page's table for 2 to 4 brokers, with the best value per row marked",
    openapi_extra=csv_doc(COMPARE_CSV),
)
def compare(request: HttpRequest, query: Query[CompareQuery]) -> HttpResponseBase:
    def table() -> tuple[CompareOut, list[str]]:
        # The compare page's own parsing judges the slugs (unknown ones, too many).
        slugs, error = parse_compare(query.brokers, known={slug for slug, _ in broker_selectors.compare_choices()})
        if error is None and len(slugs) < 2:
            error = "Choose at least two brokers to compare."
        if error is not None:
            raise errors.FieldErrors({"brokers": [error]})
        brokers, rows = broker_selectors.broker_compare(slugs=slugs)
        out = CompareOut(
            brokers=[b.slug for b in brokers],
            rows=[
                CompareRowOut(
                    label=row.label,
                    cells=[
                        CompareCellOut(broker=b.slug, value=_compare_value(value), best=best, note=note)
                        for b, (value, note, best) in zip(brokers, row.cells, strict=True)
                    ],
                )
                for row in rows
            ],
        )
        return out, [cachetags.BROKER_LIST, *(cachetags.broker(b.pk) for b in brokers)]

    def cells(out: CompareOut) -> Iterator[list[Any]]:
        for row in out.rows:
            for c in row.cells:
                value = str(c.value).lower() if isinstance(c.value, bool) else c.value
                yield [row.label, c.broker, value, "true" if c.best else "false", c.note]

    return json_or_csv(
        request,
        fmt=query.format,
        build=table,
        csv_rows=cells,
        columns=COMPARE_CSV,
        filename="compare.csv",
        params=CompareQuery.model_fields,
    )


def _fields(rows: Iterable[Any], columns: dict[str, str]) -> list[list[Any]]:
    """CSV rows of schema objects whose fields are the columns."""
    return [[getattr(r, name) for name in columns] for r in rows]


def _account_suffix(account: str | None) -> str:
    """What a file name of one account's figures ends with (nothing for the feed account)."""
    return f"-{slugify(account)}" if account else ""


def _broker(slug: str) -> Broker:
    try:
        return broker_selectors.broker_profile(slug=slug)
    except Broker.DoesNotExist:
        metrics.incr("api_not_found")
        raise HttpError(404, f"No broker '{slug[:40]}'.") from None


def _broker_id(slug: str) -> int:
    found = api_selectors.broker_id_for(slug=slug)
    if found is None:
        metrics.incr("api_not_found")
        raise HttpError(404, f"No broker '{slug[:40]}'.")
    return found


def _instrument(b: Broker, symbol: str) -> Instrument:
    instrument = Instrument.objects.filter(symbol=symbol, brokers=b).first()
    if instrument is None:
        metrics.incr("api_not_found")
        raise HttpError(404, f"'{b.slug[:40]}' does not quote '{symbol}'.")
    return instrument


SlugPath: Any = params.Path(..., pattern=SLUG_PATTERN, description="The broker's slug, as in /brokers.")
SymbolPath: Any = params.Path(..., pattern=SYMBOL_PATTERN, description="Canonical symbol, e.g. EURUSD.")


@public.get(
    "/brokers/{slug}",
    response={200: BrokerDetailOut, **_error_responses(404, 422, 429)},
    summary="One broker: licences, accounts and fees, all-in costs, instruments, latest score, measured spreads",
)
def broker_detail(request: HttpRequest, slug: str = SlugPath) -> HttpResponse:
    def render() -> tuple[bytes, list[str]]:
        b = _broker(slug)
        now = timezone.now()
        scores = broker_selectors.broker_score_history(broker=b)
        costs = broker_selectors.broker_costs(broker=b, now=now)
        out = BrokerDetailOut(
            **BrokerOut.of(b).dict(),
            description=b.description,
            company_type=b.company_type,
            negative_balance_protection=b.negative_balance_protection,
            segregated_funds=b.segregated_funds,
            funding_methods=[f.name for f in b.funding_methods.all()],
            licences=[LicenceOut.of(lic) for lic in b.licences.all()],
            accounts=[
                AccountOut.of(a, feed=costs.feed_account, measured=costs.measured_account_ids)
                for a in b.account_types.all()
            ],
            non_trading_fees=FeesOut(
                deposit_usd=b.deposit_fee,
                withdrawal_usd=b.withdrawal_fee,
                inactivity_usd_per_month=b.inactivity_fee,
                inactivity_after_months=b.inactivity_after_months,
            ),
            costs=CostsOut.of(costs, broker=b, as_of=now),
            instruments=[
                InstrumentOut(
                    symbol=bi.instrument.symbol,
                    name=bi.instrument.name,
                    asset_class=bi.instrument.asset_class,
                    broker_symbol=bi.broker_symbol,
                )
                for bi in b.broker_instruments.all()
            ],
            latest_score=ScoreOut.of(scores[-1]) if scores else None,
            spreads=[
                SpreadOut.of(r, account=costs.feed_account, as_of=now)
                for r in broker_selectors.broker_spread_history(broker=b, now=now)
            ],
        )
        return out.model_dump_json().encode(), [cachetags.broker(b.pk)]

    return cached_json(request, render)


class CostsQuery(Schema):
    instrument: str | None = Field(None, pattern=SYMBOL_PATTERN, description="Only this canonical symbol.")
    format: Format = "json"


@public.get(
    "/brokers/{slug}/costs",
    response={200: CostsOut, **_error_responses(404, 422, 429)},
    summary="A broker's all-in cost per instrument and account (the profile's cost table)",
    openapi_extra=csv_doc(COSTS_CSV),
)
def broker_costs(request: HttpRequest, query: Query[CostsQuery], slug: str = SlugPath) -> HttpResponseBase:
    def costs() -> tuple[CostsOut, list[str]]:
        b = _broker(slug)
        now = timezone.now()
        out = CostsOut.of(broker_selectors.broker_costs(broker=b, now=now), broker=b, as_of=now)
        out.rows = [r for r in out.rows if query.instrument in (None, r.instrument)]
        return out, [cachetags.broker(b.pk)]

    return json_or_csv(
        request,
        fmt=query.format,
        build=costs,
        csv_rows=lambda out: _fields(out.rows, COSTS_CSV),
        columns=COSTS_CSV,
        filename=f"{slug}-costs.csv",
        params=CostsQuery.model_fields,
    )


class ScoresQuery(Schema):
    limit: int = Field(90, ge=1, le=1000, description="How many of the latest runs, oldest first.")
    format: Format = "json"


@public.get(
    "/brokers/{slug}/scores",
    response={200: list[ScoreOut], **_error_responses(404, 422, 429)},
    summary="A broker's TrustMetrics score history, with components and reasons",
    openapi_extra=csv_doc(SCORES_CSV),
)
def broker_scores(request: HttpRequest, query: Query[ScoresQuery], slug: str = SlugPath) -> HttpResponseBase:
    return _score_history(
        request,
        slug=slug,
        fmt=query.format,
        params=ScoresQuery.model_fields,
        read=lambda b: broker_selectors.broker_score_history(broker=b, limit=query.limit),
        window=lambda broker_id: api_selectors.scores_window(broker_id=broker_id, limit=query.limit),
        out=ScoreOut.of,
        csv_row=score_csv_row,
        columns=SCORES_CSV,
        filename=f"{slug}-scores.csv",
    )


Out = TypeVar("Out", bound=Schema)


def _score_history(
    request: HttpRequest,
    *,
    slug: str,
    fmt: str,
    params: Iterable[str],
    read: Callable[[Broker], list[TrustScore]],
    window: Callable[[int], Window],
    out: Callable[[TrustScore], Out],
    csv_row: Callable[[Out], list[Any]],
    columns: dict[str, str],
    filename: str,
) -> HttpResponseBase:
    """A broker's score history: JSON from the profile's selector (``read``), cached; CSV streamed from the
    same rows (``window``: up to years of them), each row through the same schema (``out``)."""
    if fmt == "csv":
        broker_id = _broker_id(slug)
        return streamed_csv(
            request,
            window=window(broker_id),
            row=lambda s: csv_row(out(s)),
            columns=columns,
            filename=filename,
            params=params,
            tags=[cachetags.broker(broker_id)],
        )

    def render() -> tuple[bytes, list[str]]:
        b = _broker(slug)
        return to_json([out(s) for s in read(b)]), [cachetags.broker(b.pk)]

    return cached_json(request, render, params=params)


def _broker_table(
    request: HttpRequest,
    *,
    slug: str,
    fmt: str,
    name: str,
    columns: dict[str, str],
    rows: Callable[[Broker], list[Any]],
    tags: tuple[str, ...] = (),
) -> HttpResponseBase:
    """A profile table as JSON (a list of rows) or CSV (the same fields as columns): ``rows(broker)`` builds it."""

    def table() -> tuple[list[Any], list[str]]:
        b = _broker(slug)
        return rows(b), [cachetags.broker(b.pk), *tags]

    return json_or_csv(
        request,
        fmt=fmt,
        build=table,
        csv_rows=lambda out: _fields(out, columns),
        columns=columns,
        filename=f"{slug}-{name}.csv",
        params=FormatQuery.model_fields,
    )


@public.get(
    "/brokers/{slug}/licences",
    response={200: list[LicenceOut], **_error_responses(404, 422, 429)},
    summary="A broker's licences: the profile's licence table",
    openapi_extra=csv_doc(LICENCES_CSV),
)
def broker_licences(request: HttpRequest, query: Query[FormatQuery], slug: str = SlugPath) -> HttpResponseBase:
    return _broker_table(
        request,
        slug=slug,
        fmt=query.format,
        name="licences",
        columns=LICENCES_CSV,
        rows=lambda b: [LicenceOut.of(lic) for lic in b.licences.all()],
    )


@public.get(
    "/brokers/{slug}/accounts",
    response={200: list[AccountOut], **_error_responses(404, 422, 429)},
    summary="A broker's accounts and their fees: the profile's accounts table",
    openapi_extra=csv_doc(ACCOUNTS_CSV),
)
def broker_accounts(request: HttpRequest, query: Query[FormatQuery], slug: str = SlugPath) -> HttpResponseBase:
    def rows(b: Broker) -> list[AccountOut]:
        costs = broker_selectors.broker_costs(broker=b)
        feed, measured = costs.feed_account, costs.measured_account_ids
        return [AccountOut.of(a, feed=feed, measured=measured) for a in b.account_types.all()]

    return _broker_table(request, slug=slug, fmt=query.format, name="accounts", columns=ACCOUNTS_CSV, rows=rows)


@public.get(
    "/brokers/{slug}/releases",
    response={200: list[BrokerReleaseOut], **_error_responses(404, 422, 429)},
    summary="How a broker held up at its last reported high-impact releases: the profile's table",
    openapi_extra=csv_doc(RELEASES_CSV),
)
def broker_releases(request: HttpRequest, query: Query[FormatQuery], slug: str = SlugPath) -> HttpResponseBase:
    def rows(b: Broker) -> list[BrokerReleaseOut]:
        return [
            BrokerReleaseOut(
                event_id=r.report.event_id,
                name=r.report.event.name,
                scheduled_at=r.report.event.scheduled_at,
                rank=r.rank,
                brokers_measured=r.brokers_measured,
                median_ratio=r.median_ratio,
                worst_instrument=r.worst_symbol,
                longest_gap_s=r.longest_gap_s,
            )
            for r in event_selectors.broker_last_releases(broker_id=b.pk)
        ]

    # A new report revalidates the events pages, not every broker's: the answer carries both tags.
    return _broker_table(
        request, slug=slug, fmt=query.format, name="releases", columns=RELEASES_CSV, rows=rows, tags=(cachetags.EVENTS,)
    )


class DailyScoresQuery(Schema):
    days: int = Field(90, ge=1, le=3660, description="How many days back, oldest first (the page shows 90).")
    format: Format = "json"


@public.get(
    "/brokers/{slug}/scores/daily",
    response={200: list[DailyScoreOut], **_error_responses(404, 422, 429)},
    summary="A broker's daily score history: the profile's table (the day's last run, with its uncertainty band)",
    openapi_extra=csv_doc(DAILY_SCORES_CSV),
)
def broker_scores_daily(request: HttpRequest, query: Query[DailyScoresQuery], slug: str = SlugPath) -> HttpResponseBase:
    return _score_history(
        request,
        slug=slug,
        fmt=query.format,
        params=DailyScoresQuery.model_fields,
        read=lambda b: trust_selectors.trust_daily_history(broker_id=b.pk, days=query.days),
        window=lambda broker_id: api_selectors.daily_scores_window(
            broker_id=broker_id, days=query.days, now=timezone.now()
        ),
        out=DailyScoreOut.of,
        csv_row=daily_score_csv_row,
        columns=DAILY_SCORES_CSV,
        filename=f"{slug}-daily-scores.csv",
    )


WINDOWS = [name for name, *_ in SPREAD_WINDOWS]
SESSIONS = [name for name, *_ in broker_selectors.SPREAD_SESSIONS]
SPREADS_CSV = {
    "instrument": "canonical symbol",
    "broker_symbol": "the symbol in the broker's feed",
    "quotes": "quotes measured in the longest window that has any",
    **{f"mean_pips_{w}": f"time-weighted mean spread in pips over the last {w}" for w in WINDOWS},
    **{f"mean_pips_{s}": f"mean spread in pips in the {s} session (UTC), last 7 days" for s in SESSIONS},
    "account": "the account the figures are for (the broker's feed account unless `account` named another)",
    "as_of": "ISO 8601 time the windows end (UTC)",
    **{f"coverage_days_{w}": f"days of data the {w} window really covers" for w in WINDOWS},
}
ACCOUNT_PARAM = (
    "One of the broker's accounts, by name as listed in /brokers/{slug} (case-insensitive): its own measured "
    "spreads. Default: the broker's feed account, the one its profile shows. An account the broker does not "
    "have: 404. An account without a feed of its own has no measured spreads (its cost uses the feed "
    "account's spread plus the published mark-up difference: see /brokers/{slug})."
)


def _account(b: Broker, name: str | None) -> AccountType | None:
    """The broker's account called ``name`` (404 with the broker's accounts when it has none of that name);
    None for no name: the selectors then read the broker's feed account."""
    if name is None:
        return None
    accounts = list(b.account_types.all())
    for found in accounts:
        if found.name.casefold() == name.strip().casefold():
            return found
    known = ", ".join(a.name for a in accounts) or "none listed"
    raise errors.FieldErrors(
        {"account": [f"{b.slug} has no account '{name[:60]}'; its accounts: {known}."]}, status=404
    )


def _figures_account(b: Broker, chosen: AccountType | None) -> AccountType | None:
    """The account the figures are for: the one asked for, else the feed account the selectors read."""
    return chosen if chosen is not None else market_selectors.feed_accounts(brokers=[b])[b.pk]


class SpreadsQuery(Schema):
    instrument: str | None = Field(None, pattern=SYMBOL_PATTERN, description="Only this canonical symbol.")
    account: str | None = Field(None, min_length=1, max_length=60, description=ACCOUNT_PARAM)
    format: Format = "json"


@public.get(
    "/brokers/{slug}/spreads",
    response={200: list[SpreadOut], **_error_responses(404, 422, 429)},
    summary="A broker's measured spreads by instrument, account, window and trading session",
    description=(
        "The profile page's figures (for another account with `account`: the same selector on that account's "
        "bars). Each row says which account and as of when; `coverage` is the page's note where the data is "
        "shorter than a window. Empty when nothing is measured on that account. Session percentiles of one "
        "instrument: /brokers/{slug}/spreads/{symbol}."
    ),
    openapi_extra=csv_doc(SPREADS_CSV),
)
def broker_spreads(request: HttpRequest, query: Query[SpreadsQuery], slug: str = SlugPath) -> HttpResponseBase:
    def rows() -> tuple[list[SpreadOut], list[str]]:
        b = _broker(slug)
        chosen = _account(b, query.account)
        now = timezone.now()
        shown = _figures_account(b, chosen)
        found = [
            SpreadOut.of(r, account=shown, as_of=now)
            for r in broker_selectors.broker_spread_history(broker=b, now=now, account=chosen)
        ]
        return [r for r in found if query.instrument in (None, r.instrument)], [cachetags.broker(b.pk)]

    def table(found: list[SpreadOut]) -> Iterator[list[Any]]:
        for r in found:
            yield (
                [r.instrument, r.broker_symbol, r.quotes]
                + [r.windows.get(w) for w in WINDOWS]
                + [r.sessions.get(s) for s in SESSIONS]
                + [r.account, r.as_of.isoformat() if r.as_of else None]
                + [r.coverage_days.get(w) for w in WINDOWS]
            )

    return json_or_csv(
        request,
        fmt=query.format,
        build=rows,
        csv_rows=table,
        columns=SPREADS_CSV,
        filename=f"{slug}{_account_suffix(query.account)}-spreads.csv",
        params=SpreadsQuery.model_fields,
    )


class SpreadHistoryQuery(Schema):
    account: str | None = Field(None, min_length=1, max_length=60, description=ACCOUNT_PARAM)
    format: Format = "json"


@public.get(
    "/brokers/{slug}/spreads/{symbol}",
    response={200: SpreadHistoryOut, **_error_responses(404, 422, 429)},
    summary="One broker's spread history on one instrument and account, hour of day against peers, percentiles",
    description=(
        "The spread page's figures (for another account with `account`: the same selector on that account's "
        "bars). Percentiles are per trading session over the last 7 days of 1-minute bars."
    ),
    openapi_extra=csv_doc(SESSION_PERCENTILES_CSV),
)
def broker_spread_history(
    request: HttpRequest, query: Query[SpreadHistoryQuery], slug: str = SlugPath, symbol: str = SymbolPath
) -> HttpResponseBase:
    def history() -> tuple[SpreadHistoryOut, list[str]]:
        b = _broker(slug)
        instrument = _instrument(b, symbol)
        chosen = _account(b, query.account)
        h = event_selectors.spread_history(broker=b, instrument=instrument, now=timezone.now(), account=chosen)
        shown = h.account
        coverage = {}
        for name, points in h.series.items():
            if points:  # from the start of the first drawn bucket, at most the span
                span_s = event_selectors.SPREAD_SPANS[name][0].total_seconds()
                coverage[name] = round(min(span_s, h.as_of.timestamp() - points[0][0]) / 86_400, 2)
        out = SpreadHistoryOut(
            broker=b.slug,
            instrument=instrument.symbol,
            account=shown.name if shown is not None else None,
            as_of=h.as_of,
            coverage_days=coverage,
            url=reverse("spreads:detail", kwargs={"slug": b.slug, "symbol": instrument.symbol}),
            series=h.series,
            hours=h.hours,
            peers=h.peers,
            sessions={
                name: SessionPercentilesOut(p50=v["p50"], p95=v["p95"], p99=v["p99"], minutes=int(v["n"] or 0))
                for name, v in h.sessions.items()
            },
        )
        return out, [cachetags.broker(b.pk)]

    def sessions(out: SpreadHistoryOut) -> Iterator[list[Any]]:
        for name, v in out.sessions.items():
            yield [name, v.p50, v.p95, v.p99, v.minutes, out.account, out.as_of.isoformat()]

    return json_or_csv(
        request,
        fmt=query.format,
        build=history,
        csv_rows=sessions,
        columns=SESSION_PERCENTILES_CSV,
        filename=f"{slug}-{symbol}{_account_suffix(query.account)}-sessions.csv",
        params=SpreadHistoryQuery.model_fields,
    )


@public.get(
    "/brokers/{slug}/spreads/{symbol}/hours",
    response={200: SpreadHoursOut, **_error_responses(404, 422, 429)},
    summary="The spread page's hour-of-day table: one broker's mean spread per UTC hour against the other brokers",
    description="Last 7 days, from the same selector as the spread page (for another account with `account`).",
    openapi_extra=csv_doc(SPREAD_HOURS_CSV),
)
def broker_spread_hours(
    request: HttpRequest, query: Query[SpreadHistoryQuery], slug: str = SlugPath, symbol: str = SymbolPath
) -> HttpResponseBase:
    def hours() -> tuple[SpreadHoursOut, list[str]]:
        b = _broker(slug)
        instrument = _instrument(b, symbol)
        chosen = _account(b, query.account)
        h = event_selectors.spread_history(broker=b, instrument=instrument, now=timezone.now(), account=chosen)
        shown = h.account
        out = SpreadHoursOut(
            broker=b.slug,
            instrument=instrument.symbol,
            account=shown.name if shown is not None else None,
            as_of=h.as_of,
            hours=[
                HourOut(hour=i, pips=mine, peers_median_pips=peer)
                for i, (mine, peer) in enumerate(zip(h.hours, h.peers, strict=True))
            ],
        )
        return out, [cachetags.broker(b.pk)]

    return json_or_csv(
        request,
        fmt=query.format,
        build=hours,
        csv_rows=lambda out: (
            [r.hour, r.pips, r.peers_median_pips, out.account, out.as_of.isoformat()] for r in out.hours
        ),
        columns=SPREAD_HOURS_CSV,
        filename=f"{slug}-{symbol}{_account_suffix(query.account)}-hours.csv",
        params=SpreadHistoryQuery.model_fields,
    )


# -- news events -----------------------------------------------------------------------------------

events = Router(tags=["events"])
MAX_EVENT_SPAN = timedelta(days=366)


class EventsQuery(Schema):
    since: datetime | None = Field(None, description="ISO 8601; default: 7 days ago.")
    until: datetime | None = Field(None, description="ISO 8601; default: 7 days ahead. At most a year after since.")
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")
    impact: Literal["low", "medium", "high"] | None = None
    format: Format = "json"


@events.get(
    "/events",
    response={200: list[EventOut], **_error_responses(400, 422, 429)},
    summary="Economic-calendar releases (news events)",
    description="How each broker's spreads held up at a high-impact release: see /events/reports.",
    openapi_extra=csv_doc(EVENTS_CSV),
)
def events_list(request: HttpRequest, query: Query[EventsQuery]) -> HttpResponseBase:
    for name, value in (("since", query.since), ("until", query.until)):
        if value is not None and not 1970 <= value.year <= 2100:  # also keeps the date arithmetic in range
            raise errors.FieldErrors({name: ["Give a time between 1970 and 2100."]})
    now = timezone.now()
    since = query.since or now - timedelta(days=7)
    until = query.until or since + timedelta(days=14)
    if since.tzinfo is None or until.tzinfo is None:
        raise errors.FieldErrors({"since": ["Give a time zone, e.g. 2026-01-02T08:30:00Z."]})
    if until <= since or until - since > MAX_EVENT_SPAN:
        raise errors.FieldErrors({"until": ["until must be after since, and at most a year after it."]})
    if query.format == "csv":  # up to a year of releases: streamed
        return streamed_csv(
            request,
            window=api_selectors.events_window(since=since, until=until, currency=query.currency, impact=query.impact),
            row=lambda e: event_csv_row(
                EventOut(
                    scheduled_at=timezone.localtime(e.scheduled_at),
                    currency=e.currency.upper(),
                    impact=e.impact,
                    name=e.name,
                )
            ),
            columns=EVENTS_CSV,
            filename="events.csv",
            params=EventsQuery.model_fields,
            tags=[cachetags.EVENTS],
        )

    def render() -> tuple[bytes, list[str]]:
        rows = [
            EventOut(
                scheduled_at=datetime.fromtimestamp(e.at_us / 1e6, tz=timezone.get_current_timezone()),
                currency=e.currency.upper(),
                impact=e.impact,
                name=e.name,
            )
            for e in market_selectors.calendar_events(since=since, until=until)
            if query.currency in (None, e.currency.upper()) and query.impact in (None, e.impact)
        ]
        return TypeAdapter(list[EventOut]).dump_json(rows), [cachetags.EVENTS]

    return cached_json(request, render, params=EventsQuery.model_fields)


class ReportsQuery(Schema):
    limit: int = Field(200, ge=1, le=1000, description="How many of the latest reports, latest first.")
    format: Format = "json"


@events.get(
    "/events/reports",
    response={200: list[ReportSummaryOut], **_error_responses(422, 429)},
    summary="Reports on high-impact releases: how brokers' spreads held up (the archive page)",
    openapi_extra=csv_doc(REPORTS_CSV),
)
def event_reports(request: HttpRequest, query: Query[ReportsQuery]) -> HttpResponseBase:
    # A report names brokers by slug: a broker's edit (the broker-list tag) changes the download too.
    tags: list[str] = [cachetags.EVENTS, cachetags.BROKER_LIST]
    if query.format == "csv":  # up to 1,000 reports: streamed
        return streamed_csv(
            request,
            window=api_selectors.event_reports_window(limit=query.limit),
            row=lambda r: report_summary_csv_row(ReportSummaryOut.of(r)),
            columns=REPORTS_CSV,
            filename="event-reports.csv",
            params=ReportsQuery.model_fields,
            tags=tags,
        )

    def render() -> tuple[bytes, list[str]]:
        found = [ReportSummaryOut.of(r) for r in event_selectors.event_report_list(limit=query.limit)]
        return TypeAdapter(list[ReportSummaryOut]).dump_json(found), tags

    return cached_json(request, render, params=ReportsQuery.model_fields)


EventIdPath: Any = params.Path(..., ge=1, le=2**31 - 1, description="The release's id, as in /events/reports.")


@events.get(
    "/events/{event_id}/report",
    response={200: ReportOut, **_error_responses(404, 422, 429)},
    summary="One release's report: every broker's calm, peak, p95, gaps and recovery per instrument",
    openapi_extra=csv_doc(REPORT_CSV),
)
def event_report(request: HttpRequest, query: Query[FormatQuery], event_id: int = EventIdPath) -> HttpResponseBase:
    def report() -> ReportOut:
        try:
            found, sections = event_selectors.event_report_detail(event_id=event_id)
        except EventReport.DoesNotExist:
            metrics.incr("api_not_found")
            raise HttpError(404, f"No report for release {event_id} (yet).") from None
        return ReportOut(
            **ReportSummaryOut.of(found).dict(),
            instruments=[
                ReportInstrumentOut(instrument=s.instrument.symbol, rows=[ReportRowOut.of(r) for r in s.rows])
                for s in sections
            ],
        )

    def rows(out: ReportOut) -> Iterator[list[Any]]:
        for section in out.instruments:
            for row in section.rows:
                yield [section.instrument, *(getattr(row, name) for name in ReportRowOut.model_fields)]

    return json_or_csv(
        request,
        fmt=query.format,
        build=lambda: (report(), [cachetags.EVENTS, cachetags.event(event_id)]),
        csv_rows=rows,
        columns=REPORT_CSV,
        filename=f"event-{event_id}-report.csv",
        params=FormatQuery.model_fields,
    )


# -- methodology -----------------------------------------------------------------------------------

methodology = Router(tags=["methodology"])


@methodology.get(
    "/methodology/validation",
    response={200: ValidationOut, **_error_responses(422, 429)},
    summary="The methodology page's validation table: rank correlation per scenario",
    description="While the current methodology's figures are being computed: `pending`, no scenarios (as the page).",
    openapi_extra=csv_doc(VALIDATION_CSV),
)
def methodology_validation(request: HttpRequest, query: Query[FormatQuery]) -> HttpResponseBase:
    def table() -> tuple[ValidationOut, list[str]]:
        stored = trust_selectors.trust_validation_stored(methodology=METHODOLOGY)
        if stored is None:  # the page starts computing them (trustmetrics.views); this answer only reads
            return ValidationOut(methodology_version=METHODOLOGY.version, pending=True, as_of=None, scenarios=[]), [
                cachetags.METHODOLOGY
            ]
        out = ValidationOut(
            methodology_version=stored["version"],
            pending=False,
            as_of=stored["as_of"],
            scenarios=[
                ValidationScenarioOut(
                    scenario=r["title"],
                    period=r["period"],
                    brokers=r["brokers"],
                    releases=r["releases"],
                    spearman=r["spearman"],
                    meets_bar=r["spearman"] >= 0.9,
                )
                for r in stored["scenarios"]
            ],
        )
        return out, [cachetags.METHODOLOGY]

    def scenarios(out: ValidationOut) -> Iterator[list[Any]]:
        as_of = out.as_of.isoformat() if out.as_of else None
        for r in out.scenarios:
            meets = "true" if r.meets_bar else "false"
            yield [r.scenario, r.period, r.brokers, r.releases, r.spearman, meets, out.methodology_version, as_of]

    return json_or_csv(
        request,
        fmt=query.format,
        build=table,
        csv_rows=scenarios,
        columns=VALIDATION_CSV,
        filename="methodology-validation.csv",
        params=FormatQuery.model_fields,
    )


def _components(tables: MethodologyTables) -> list[MethodologyComponentOut]:
    return [
        MethodologyComponentOut(
            key=c.key,
            title=c.title,
            weight=c.weight,
            measured=c.measured,
            summary=c.summary,
            details=c.details,
            methodology_version=tables.version,
        )
        for c in tables.components
    ]


def _points(rows: list[MethodologyRow], version: str) -> list[MethodologyPointsOut]:
    return [MethodologyPointsOut(key=r.key, name=r.name, value=r.value, methodology_version=version) for r in rows]


def _csv_value(value: Any) -> Any:
    return ("true" if value else "false") if isinstance(value, bool) else value


def _methodology_route(
    name: str, *, summary: str, schema: type[Schema], columns: dict[str, str], rows: Callable[[MethodologyTables], Any]
) -> None:
    """/methodology/<name>: one of the methodology page's reference tables as JSON or CSV, its rows from
    trustmetrics.selectors.trust_methodology_tables (what the page shows). Named methodology_<name> (with
    "_" for "-") for reverse() and the schema's operation id."""
    view_name = "methodology_" + name.replace("-", "_")

    def view(request: HttpRequest, query: Query[FormatQuery]) -> HttpResponseBase:
        return json_or_csv(
            request,
            fmt=query.format,
            build=lambda: (rows(trust_selectors.trust_methodology_tables()), [cachetags.METHODOLOGY]),
            csv_rows=lambda out: ([_csv_value(v) for v in row] for row in _fields(out, columns)),
            columns=columns,
            filename=f"methodology-{name}.csv",
            params=FormatQuery.model_fields,
        )

    view.__name__ = view_name
    methodology.get(
        f"/methodology/{name}",
        response={200: list[schema], **_error_responses(422, 429)},  # type: ignore[valid-type]
        summary=summary,
        openapi_extra=csv_doc(columns),
        operation_id=view_name,
        url_name=view_name,
    )(view)


METHODOLOGY_TABLES: list[tuple[str, str, type[Schema], dict[str, str], Callable[[MethodologyTables], Any]]] = [
    (
        "components",
        "The methodology page's components and their weights in the overall score",
        MethodologyComponentOut,
        METHODOLOGY_COMPONENTS_CSV,
        _components,
    ),
    (
        "tiers",
        "The methodology page's licence points per regulator tier",
        MethodologyPointsOut,
        METHODOLOGY_TIERS_CSV,
        lambda t: _points(t.tiers, t.version),
    ),
    (
        "licence-statuses",
        "The methodology page's factor per licence status",
        MethodologyPointsOut,
        METHODOLOGY_STATUSES_CSV,
        lambda t: _points(t.statuses, t.version),
    ),
    (
        "company-types",
        "The methodology page's share of the company-type points per company type",
        MethodologyPointsOut,
        METHODOLOGY_COMPANY_TYPES_CSV,
        lambda t: _points(t.company_types, t.version),
    ),
    (
        "transparency",
        "The methodology page's transparency points per item",
        MethodologyPointsOut,
        METHODOLOGY_TRANSPARENCY_CSV,
        lambda t: _points(t.transparency, t.version),
    ),
    (
        "reference-spreads",
        "The methodology page's reference spread per instrument (pips), what cost is scored against",
        MethodologyPointsOut,
        METHODOLOGY_REFERENCE_SPREADS_CSV,
        lambda t: _points(t.reference_spreads, t.version),
    ),
]
for _name, _summary, _schema, _columns, _rows in METHODOLOGY_TABLES:
    _methodology_route(_name, summary=_summary, schema=_schema, columns=_columns, rows=_rows)

# -- best execution and live -----------------------------------------------------------------------

market = Router(tags=["market"])


class ExecutionQuery(Schema):
    instrument: str = Field(..., pattern=SYMBOL_PATTERN)
    side: Literal["buy", "sell"]
    size: float = Field(..., gt=0, allow_inf_nan=False)
    # The page's form reads a size without a unit the same way.
    unit: Literal["units", "lots"] = Field(DEFAULT_UNIT, description="What size counts: lots (default) or units.")
    format: Format = "json"


@market.get(
    "/execution",
    response={200: ExecutionOut, **_error_responses(400, 422, 429), 503: ErrorOut},
    summary="Best execution right now: what an order would cost at each broker, from live depth",
    description="With `format=csv`: the page's table, one row per broker and account (never cached: live).",
    openapi_extra=csv_doc(EXECUTION_CSV),
)
def execution(request: HttpRequest, query: Query[ExecutionQuery]) -> HttpResponseBase:
    form = OrderForm({k: str(v) for k, v in query.dict().items() if k != "format"})
    if not form.is_valid():
        raise errors.FieldErrors(form.errors)
    data = form.cleaned_data
    try:
        estimate = execution_selectors.execution_estimate(
            instrument=data["instrument"], side=data["side"], size=data["units"]
        )
    except execution_selectors.MarketDataUnavailable:
        raise HttpError(503, "Market data is unavailable right now; try again shortly.") from None
    # The page's JSON body, as documented by its schema.
    body = execution_selectors.estimate_json(
        estimate=estimate, instrument=data["instrument"], lot=data["lot"], default_unit=DEFAULT_UNIT
    )
    out = ExecutionOut.model_validate(body)
    if query.format == "csv":
        return live_csv(
            request,
            rows=([getattr(r, name) for name in EXECUTION_CSV_FIELDS] for r in out.brokers),
            filename=f"execution-{data['instrument'].symbol}.csv",
            header=list(EXECUTION_CSV),
            moving=["age_s"],
        )
    response = HttpResponse(out.model_dump_json(), content_type="application/json")
    response["Cache-Control"] = "no-store"  # live market data
    return response


@market.get(
    "/live/quotes",
    auth=ApiKeyAuth(),
    response={200: LiveOut, 401: ErrorOut, **_error_responses(422, 429)},
    summary="The latest quote of every broker and instrument, and every feed's status (API key required)",
)
def live_quotes(request: HttpRequest) -> HttpResponse:
    latest, status = live_board.latest_quotes()
    quotes = []
    for q in latest.values():
        try:
            quotes.append(LiveQuoteOut(**{k: q[k] for k in LiveQuoteOut.model_fields}))
        except (KeyError, TypeError, ValueError):
            metrics.incr("api_bad_live_quote")
    out = LiveOut(quotes=quotes, status=status)
    response = HttpResponse(out.model_dump_json(), content_type="application/json")
    response["Cache-Control"] = "private, no-store"
    return response


api.add_router("", public)
api.add_router("", events)
api.add_router("", market)
api.add_router("", methodology)
