"""The Rust ISO-8601 readers against the running Python's on generated strings.

The query evaluator compares datetimes with ISO strings by reading the strings: in Python
(``Filter.matches``) with ``datetime.fromisoformat`` after a trailing ``Z`` becomes ``+00:00``,
and ``date.fromisoformat``; in Rust with ``iso.rs``. A string one side reads and the other does
not makes the backends disagree with the reference, so every generated string must read the
same on both sides: the same datetime, or neither.

The Rust reader is reached through the ``$datetime`` / ``$date`` tags of the stored JSON, which
use it too.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataknobs_data import _native
from dataknobs_data.exceptions import DataFormatError
from dataknobs_data.query import _parse_date, _parse_datetime


def rust_datetime(text: str) -> dt.datetime | None:
    try:
        value: Any = _native.decode_json(json.dumps({"$datetime": text}))
    except DataFormatError:
        return None
    assert isinstance(value, dt.datetime)
    return value


def rust_date(text: str) -> dt.date | None:
    try:
        value: Any = _native.decode_json(json.dumps({"$date": text}))
    except DataFormatError:
        return None
    assert isinstance(value, dt.date)
    return value


def same_datetime(a: dt.datetime | None, b: dt.datetime | None) -> bool:
    if a is None or b is None:
        return a is b
    if (a.utcoffset() is None) != (b.utcoffset() is None):
        return False
    if a.utcoffset() is None:
        return a == b
    # An offset with a fraction of a second is kept as its instant (iso.rs says why).
    return a == b and (a.utcoffset() == b.utcoffset() or b.utcoffset().microseconds != 0)  # type: ignore[union-attr]


def check(text: str) -> None:
    want = _parse_datetime(text)
    got = rust_datetime(text)
    assert same_datetime(got, want), f"{text!r}: rust {got!r}, python {want!r}"
    want_date = _parse_date(text)
    assert rust_date(text) == want_date, f"{text!r}: rust {rust_date(text)!r}, python {want_date!r}"


# The pieces ISO strings are made of, including the ones Python 3.11 added (week dates, basic
# forms, fractions after any field, offsets with seconds) and near misses.
DATES = [
    "2024-01-01",
    "20240101",
    "2024-W01",
    "2024W01",
    "2024-W01-1",
    "2024W011",
    "2024-W53",
    "2020-W53-7",
    "2024-02-30",
    "0000-01-01",
    "9999-12-31",
    "9999-W52-5",
    "2024-1-01",
    "2024-001",
    "2024-01",
    "2024-W1",
    "2024W0",
]
SEPS = ["T", " ", "t", "x", "", "é", "-", "+", "Z", "TT"]
TIMES = [
    "10",
    "1000",
    "100000",
    "10:00",
    "10:00:00",
    "10:00:00.5",
    "10:00:00,123",
    "10:00:00.1234567",
    "10.5",
    "10:30.25",
    "1030.5",
    "10:00:00.",
    "24:00",
    "23:59:60",
    "10:0",
    "10:",
    "1",
    "10:00:00:00",
    "10:00:00.5x",
    "",
]
ZONES = [
    "",
    "Z",
    "z",
    "+00:00",
    "-00:00",
    "+05:30",
    "+0530",
    "+05",
    "-05:30:15",
    "+05:30:15.5",
    "+24:00",
    "+23:59:59.999999",
    " +00:00",
    " Z",
    "+5",
    "+05:3",
    "+",
    "+00:00Z",
    "ZZ",
    "+05:30 ",
]

pieces = st.tuples(
    st.sampled_from(DATES), st.sampled_from(SEPS), st.sampled_from(TIMES), st.sampled_from(ZONES)
).map("".join)

iso_alphabet = st.text(alphabet="0123456789-:TW.,+Z z\n", max_size=30)
formatted = st.datetimes(
    timezones=st.one_of(st.none(), st.timezones()),
).flatmap(
    lambda d: st.sampled_from(
        [
            d.isoformat(),
            d.isoformat(sep=" "),
            d.isoformat(timespec="minutes"),
            d.isoformat(timespec="milliseconds"),
            d.date().isoformat(),
            d.isoformat().replace("+00:00", "Z"),
        ]
    )
)


@pytest.mark.parametrize(
    "text",
    [
        "2024-01-01Z",
        "2024-01-01T10:00:00 +00:00",
        "10:00:00 +00:00",
        "2024-W01-1",
        "2024-01-01T10.5",
        "2024-01-01T10:00:00+05:30:15.5",
        "2024-01-01T10:00:00.+00:00",
        "2024-01-01T10:00:00 Z",
        "2024-W53-1",
        "2020-W53-7T10:00Z",
    ],
)
def test_known_forms_read_alike(text: str) -> None:
    check(text)


@settings(max_examples=3000, deadline=None)
@given(text=st.one_of(pieces, iso_alphabet, formatted, st.text(max_size=25)))
def test_generated_strings_read_alike(text: str) -> None:
    check(text)
