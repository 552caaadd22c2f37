"""RFC 3339 timestamps read in C (marketdata/feeds/_cfeeds.c) against the Python reading.

venue.iso_to_us is the compiled reader when it is built: it reads the usual shape itself
(YYYY-MM-DDThh:mm:ss.ffffff and whatever follows, every place a digit) and hands anything else to the Python reader,
venue.iso_to_us_py. Both must give the same µs, or raise the same exception, for any text.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketdata.feeds import venue

compiled: Any = venue.iso_to_us if venue.iso_to_us is not venue.iso_to_us_py else None
pytestmark = pytest.mark.skipif(compiled is None, reason="compiled core not built: python setup.py build_ext --inplace")


def _outcome(reader: Any, ts: object) -> object:
    try:
        return reader(ts)
    except Exception as exc:  # the very exception must be the same
        return f"raised {type(exc).__name__}: {exc}"


def _usual(y: int, mo: int, d: int, h: int, mi: int, s: int, f: int, t: str) -> str:
    return f"{y:04d}-{mo:02d}-{d:02d}{t}{h:02d}:{mi:02d}:{s:02d}.{f:06d}Z"


_USUAL = st.builds(
    _usual,
    st.integers(0, 9999),
    st.integers(0, 99),  # months past 12 (and 0) raise; days and times past their range add up
    st.integers(0, 99),
    st.integers(0, 99),
    st.integers(0, 99),
    st.integers(0, 99),
    st.integers(0, 999_999),
    st.sampled_from(["T", "t", " ", "x"]),
)


def _mangle(ts: str, data: st.DataObject) -> str:
    i = data.draw(st.integers(0, len(ts)))
    c = data.draw(st.sampled_from(["", "0", "9", "-", ":", ".", "Z", "z", " ", "+", "_", "٣", "é", "ZZ", "1Z", "Zx"]))
    return ts[:i] + c + ts[i + 1 :]


@settings(max_examples=2000, deadline=None)
@given(ts=_USUAL, data=st.data())
def test_the_compiled_reader_reads_as_the_python_reader(ts, data):
    for text in (ts, _mangle(ts, data)):
        venue._SECOND_CACHE.clear()
        venue._DAY_CACHE.clear()
        expected = _outcome(venue.iso_to_us_py, text)
        assert _outcome(compiled, text) == expected, text
        assert _outcome(compiled, text) == _outcome(venue.iso_to_us_py, text) == expected, text  # remembered


def test_the_compiled_reader_on_the_edges():
    for ts in [
        "1970-01-01T00:00:00.000000Z",
        "0001-01-01T00:00:00.000000Z",
        "9999-12-31T23:59:59.999999Z",
        "2024-02-29T12:00:00.000001Z",
        "2100-02-29T12:00:00.000001Z",  # no such day: the day count carries into March
        "2026-13-01T00:00:00.000000Z",
        "0000-01-01T00:00:00.000000Z",
        "2026-11-30T12:00:00.123456Zjunk",
        "2026-11-30T12:00:00.123456",
        "2026-11-30T12:00:00.123456z",
        "2026-11-30T12:00:00.12345",
        "2026-11-30T12:00:00.1234",
        "2026-11-30T12:00:00.12345Z",
        "2026-11-30T12:00:00.123Z56",
        "2026-11-30T12:00:00.123456Z\u0663",
        "\u0663" * 30,
        "2026-11-30T12:00:00.1234567Z",
        "2026-11-30T12:00:00Z",
        "2026-11-30T12:00:00.12345 Z",
        "2026-11-30T12:00:00.+12345Z",
        "2026-11-30T12:00:00.12_345Z",
        "2026-11-30T1 :00:00.123456Z",
        "2026-11-30T12:00:00.١٢٣٤٥٦Z",
        "",
        b"2026-11-30T12:00:00.123456Z",
        None,
        12,
    ]:
        expected = _outcome(venue.iso_to_us_py, ts)
        assert _outcome(compiled, ts) == expected, ts
