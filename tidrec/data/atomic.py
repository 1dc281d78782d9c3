"""RecBole atomic files (``.inter``, ``.item``, ...): tab-separated, headers like ``item_id:token``.

Types in the header: ``token`` and ``token_seq`` stay strings (a ``token_seq`` is space-separated),
``float`` and ``float_seq`` are kept as strings too and parsed by the caller, so a bad value can be
reported with its line. Quotes are literal characters (RecBole does not quote); CRLF line endings
are accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from tidrec.data.generic import read_delimited
from tidrec.data.preprocess import Table
from tidrec.errors import InputError

ATOMIC_TYPES = ("token", "token_seq", "float", "float_seq")


@dataclass(frozen=True)
class AtomicFile:
    """An atomic file's rows (all strings, plus ``row``) and its declared field types."""

    table: Table
    """Columns named without their type suffix."""
    types: dict[str, str]
    """Field name -> ``token`` | ``token_seq`` | ``float`` | ``float_seq``."""


def read_atomic(path: str | Path) -> AtomicFile:
    """Read one RecBole atomic file.

    Raises:
        InputError: missing, empty or non-UTF-8 file; a header field without a known ``:type``.
    """
    path = Path(path)
    frame = read_delimited(path, separator="\t", quote_char=None)
    names: dict[str, str] = {}
    types: dict[str, str] = {}
    for header in frame.columns:
        if header == "row":
            continue
        name, _, kind = header.rpartition(":")
        if not name or kind not in ATOMIC_TYPES:
            raise InputError(
                f"{path} line 1: header field {header!r} is not 'name:type' with type in {ATOMIC_TYPES}"
            )
        names[header], types[name] = name, kind
    return AtomicFile(Table(frame.rename(names), path, 2), types)


def require_fields(atomic: AtomicFile, fields: tuple[str, ...]) -> None:
    """Refuse an atomic file lacking one of ``fields``."""
    for field in fields:
        if field not in atomic.types:
            raise InputError(
                f"{atomic.table.path}: missing column {field!r} (columns: {', '.join(atomic.types)})"
            )


def first_present(atomic: AtomicFile, candidates: tuple[str, ...]) -> str | None:
    """The first of ``candidates`` that the file has, or None."""
    return next((c for c in candidates if c in atomic.types), None)


def strip_column(frame: pl.DataFrame, column: str) -> pl.Series:
    """A string column with surrounding whitespace removed and nulls as ``""``."""
    return frame[column].fill_null("").str.strip_chars()
