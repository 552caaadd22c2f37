"""Tables read page by page, for CSV downloads streamed as they are read (api.http.streamed_csv).

A table is a queryset and its order. It is read by keyset pages: PAGE rows per query, each query starting
after the last row of the one before (by the order's fields and then the primary key), so at most PAGE rows
are in memory whatever the table's length. Not ``QuerySet.iterator()``: the web processes run behind
PgBouncer in transaction mode with server-side cursors turned off (PGBOUNCER=1), where ``iterator()`` has
psycopg fetch every row of the result at once; and a cursor held open would pin a pooled server
connection (and a transaction) for as long as a slow client takes to download. A page is one short query.

:meth:`Window.version` reads what the ETag stands for before the first row is sent: one aggregate query.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, F, Max, Min, Q, QuerySet

PAGE = 500  # rows per query: about 50 KB of CSV

Version = tuple[int, Any, Any, Any]


@dataclass(frozen=True)
class Window:
    """``rows`` in ``order``: model field paths (across relations too), all ascending or all descending
    ("-" before each), none nullable; the primary key breaks ties in the same direction."""

    rows: QuerySet[Any]
    order: tuple[str, ...]

    def __post_init__(self) -> None:
        if len({name.startswith("-") for name in self.order}) != 1:
            raise ValueError("A window's order is all ascending or all descending.")

    @property
    def _descending(self) -> bool:
        return self.order[0].startswith("-")

    @property
    def _fields(self) -> list[str]:
        return [name.lstrip("-") for name in self.order]

    def version(self) -> Version:
        """How many rows, the first order field's lowest and highest value, the highest primary key: a row
        added, removed or replaced changes at least one of them (an edit in place does not: the ETag also
        stands on the cache tags' tokens, renewed by every edit that revalidates pages)."""
        first = self._fields[0]
        found = self.rows.order_by().aggregate(n=Count("pk"), lo=Min(first), hi=Max(first), top=Max("pk"))
        return (found["n"], found["lo"], found["hi"], found["top"])

    def pages(self, *, version: Version) -> Iterator[list[Any]]:
        """The rows, PAGE at a time, as of ``version``: rows whose first order field is past the highest it
        counted came later (a new score, a new report) and are left out, so the body is the table the ETag
        was taken from; a page is only read when the one before has been sent."""
        count, _lo, hi, _top = version
        if not count:
            return
        keys = {f"keyset_{i}": F(name) for i, name in enumerate(self._fields)}
        names = [*keys, "pk"]
        sign = "-" if self._descending else ""
        after = "lt" if self._descending else "gt"
        qs = self.rows.annotate(**keys).filter(keyset_0__lte=hi).order_by(*(sign + n for n in names))
        last: list[Any] | None = None
        while True:
            page_qs = qs
            if last is not None:
                # (k0, k1, ..., pk) past the last row's: k0 past it, or k0 equal and k1 past it, and so on.
                past = Q()
                for i, name in enumerate(names):
                    past |= Q(**{n: last[j] for j, n in enumerate(names[:i])}, **{f"{name}__{after}": last[i]})
                page_qs = qs.filter(past)
            size = PAGE  # read here, not bound at import: a test shrinks it
            page = list(page_qs[:size])
            if page:
                yield page
            if len(page) < size:
                return
            row = page[-1]
            last = [getattr(row, n) for n in names]
