"""Generic input: an interactions file and an items file, CSV/TSV or Parquet, columns named by options.

Also the reading helpers the other sources share: strict UTF-8 decoding with the offending line
in the error, and timestamp parsing that names the first bad row.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from tidrec.data.preprocess import RawSource, Table
from tidrec.errors import InputError

PARQUET_SUFFIXES = (".parquet", ".pq")
TSV_SUFFIXES = (".tsv", ".tab")


def read_utf8(path: Path) -> str:
    """The file's text, refusing a missing, empty or non-UTF-8 file with a one-line error."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, expected a file") from None
    if not raw.strip():
        raise InputError(f"{path}: file is empty")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise InputError(
            f"{path} line {line}: not valid UTF-8 (byte {raw[error.start]:#04x} at offset {error.start}); "
            "re-encode the file as UTF-8"
        ) from None


def read_delimited(path: Path, *, separator: str, quote_char: str | None = '"') -> pl.DataFrame:
    """A CSV/TSV file with a header as a frame of strings (no type guessing), with a ``row`` column."""
    text = read_utf8(path)
    try:
        frame = pl.read_csv(io.StringIO(text), separator=separator, quote_char=quote_char, infer_schema=False)
    except pl.exceptions.PolarsError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        kind = "TSV" if separator == "\t" else "CSV"
        raise InputError(f"{path}: cannot parse as {kind}: {first}") from None
    if frame.height == 0:
        raise InputError(f"{path}: has a header but no rows")
    return frame.with_row_index("row")


def read_table(path: Path) -> Table:
    """Read CSV (``,``), TSV (``.tsv``/``.tab``) or Parquet (``.parquet``/``.pq``) by suffix."""
    path = Path(path)
    if path.suffix.lower() in PARQUET_SUFFIXES:
        if not path.is_file():
            raise InputError(f"{path}: file not found")
        try:
            frame = pl.read_parquet(path)
        except (pl.exceptions.PolarsError, OSError) as error:
            raise InputError(f"{path}: cannot read as Parquet: {str(error).splitlines()[0]}") from None
        if frame.height == 0:
            raise InputError(f"{path}: file is empty (no rows)")
        return Table(frame.with_row_index("row"), path, None)
    separator = "\t" if path.suffix.lower() in TSV_SUFFIXES else ","
    return Table(read_delimited(path, separator=separator), path, 2)


def require_columns(table: Table, columns: dict[str, str]) -> None:
    """Refuse a table lacking a column; ``columns`` maps column name -> the option that names it."""
    for column, option in columns.items():
        if column not in table.frame.columns:
            present = ", ".join(c for c in table.frame.columns if c != "row")
            raise InputError(
                f"{table.path}: missing column {column!r} (columns: {present}); name it with {option}"
            )


def parse_timestamps(table: Table, column: str) -> pl.Series:
    """The column as numbers: Int64 when every value is an integer, else Float64 (ordering uses the
    exact values; the Dataset stores whole seconds). Datetimes become Unix seconds.

    Raises:
        InputError: naming the first row whose value is missing, not a number, or infinite.
    """
    values = table.frame[column]
    if values.dtype.is_temporal():
        values = values.cast(pl.Datetime("us")).dt.epoch("s")
    elif values.dtype == pl.String:
        text = values.str.strip_chars()
        as_int = text.cast(pl.Int64, strict=False)
        values = as_int if as_int.null_count() == 0 else text.cast(pl.Float64, strict=False)
    elif values.dtype.is_integer():
        values = values.cast(pl.Int64)
    elif values.dtype.is_float():
        values = values.cast(pl.Float64)
    else:
        raise InputError(f"{table.path}: column {column!r} has type {values.dtype}, expected numbers")
    bad = values.is_null() | ~values.is_finite() if values.dtype == pl.Float64 else values.is_null()
    if bad.any():
        index = int(bad.arg_true()[0])
        raise InputError(
            f"{table.where(int(table.frame['row'][index]))}: timestamp {table.frame[column][index]!r} "
            f"in column {column!r} is not a number"
        )
    return values.alias("timestamp")


def item_texts(table: Table, text_columns: Sequence[str]) -> pl.Series:
    """One text per row: the column's value, or ``"col: value."`` joined over several columns."""
    frame = table.frame.with_columns(pl.col(c).cast(pl.String) for c in text_columns)
    if len(text_columns) == 1:
        return frame[text_columns[0]].fill_null("").str.strip_chars().alias("text")
    parts = [
        pl.when(pl.col(c).str.strip_chars().str.len_chars() > 0).then(
            pl.lit(f"{c}: ") + pl.col(c).str.strip_chars() + pl.lit(".")
        )
        for c in text_columns
    ]
    return frame.select(pl.concat_str(parts, separator=" ", ignore_nulls=True).alias("text"))["text"]


def load_files(
    interactions: Path,
    items: Path,
    *,
    user_column: str = "user_id",
    item_column: str = "item_id",
    timestamp_column: str = "timestamp",
    item_id_column: str = "item_id",
    text_columns: Sequence[str] = ("title",),
) -> RawSource:
    """Read a generic interactions file (user, item, timestamp) and items file (id, text columns).

    Raises:
        InputError: a missing, empty or non-UTF-8 file, a missing column, a non-numeric timestamp.
    """
    inter = read_table(Path(interactions))
    require_columns(
        inter,
        {user_column: "--user-column", item_column: "--item-column", timestamp_column: "--timestamp-column"},
    )
    catalogue = read_table(Path(items))
    require_columns(
        catalogue,
        {item_id_column: "--item-id-column", **{c: "--text-columns" for c in text_columns}},
    )
    for table, column in ((inter, user_column), (inter, item_column), (catalogue, item_id_column)):
        nulls = table.frame[column].is_null()
        if nulls.any():
            row = int(table.frame["row"][int(nulls.arg_true()[0])])
            raise InputError(f"{table.where(row)}: column {column!r} is empty")
    inter_frame = pl.DataFrame(
        {
            "user_id": inter.frame[user_column].cast(pl.String),
            "item_id": inter.frame[item_column].cast(pl.String),
            "timestamp": parse_timestamps(inter, timestamp_column),
            "row": inter.frame["row"],
        }
    )
    items_frame = pl.DataFrame(
        {
            "item_id": catalogue.frame[item_id_column].cast(pl.String),
            "text": item_texts(catalogue, text_columns),
            "row": catalogue.frame["row"],
        }
    )
    return RawSource(
        name=Path(interactions).stem,
        interactions=Table(inter_frame, inter.path, inter.first_line),
        items=Table(items_frame, catalogue.path, catalogue.first_line),
    )
