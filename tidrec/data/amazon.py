"""Amazon 2014 review datasets as TIGER and P5 used them (McAuley et al., 5-core reviews + metadata).

From a folder holding ``reviews_<Category>_5.json.gz`` (one JSON object per line: ``reviewerID``,
``asin``, ``unixReviewTime``) and ``meta_<Category>.json.gz`` (one *loose-JSON* object per line:
a Python dict literal with ``asin``, ``title``, ``brand``, ``categories`` (list of lists),
``price``). Item text as in TIGER, from title, brand, categories and price:
``"Title: X. Brand: Y. Categories: Beauty, Skin Care. Price: 12.99."``.
"""

from __future__ import annotations

import ast
import gzip
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
from tqdm import tqdm

from tidrec.data.preprocess import RawSource, Table
from tidrec.errors import InputError

_ASIN = re.compile(r"""['"]asin['"]\s*:\s*['"]([^'"]+)['"]""")


def amazon_files(folder: Path, category: str) -> tuple[Path, Path]:
    """The reviews and metadata files for ``category`` in ``folder``.

    Raises:
        InputError: either file is missing.
    """
    reviews = folder / f"reviews_{category}_5.json.gz"
    meta = folder / f"meta_{category}.json.gz"
    for path in (reviews, meta):
        if not path.is_file():
            raise InputError(f"{path}: file not found (Amazon 2014 files for category {category!r})")
    return reviews, meta


def _lines(path: Path, what: str) -> Iterator[tuple[int, str]]:
    """(line number, text) of a gzip text file, refusing non-gzip, non-UTF-8 or empty files."""
    count = 0
    try:
        with gzip.open(path, "rb") as handle:
            for number, raw in enumerate(tqdm(handle, desc=f"reading {what}", unit=" lines"), start=1):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as error:
                    raise InputError(
                        f"{path} line {number}: not valid UTF-8 (byte {raw[error.start]:#04x})"
                    ) from None
                if text.strip():
                    count += 1
                    yield number, text
    except (gzip.BadGzipFile, EOFError, OSError) as error:
        raise InputError(f"{path}: not a readable gzip file ({error})") from None
    if count == 0:
        raise InputError(f"{path}: file is empty")


def read_reviews(path: Path) -> Table:
    """Reviews as a table of ``user_id``, ``item_id``, ``timestamp`` (Int64), ``row``.

    Raises:
        InputError: a line that is not JSON, lacks a field, or has a non-numeric time.
    """
    users, items, times, rows = [], [], [], []
    for number, text in _lines(path, path.name):
        try:
            record = json.loads(text)
        except json.JSONDecodeError as error:
            raise InputError(f"{path} line {number}: not JSON ({error.msg})") from None
        for field in ("reviewerID", "asin", "unixReviewTime"):
            if field not in record:
                raise InputError(f"{path} line {number}: missing field {field!r}")
        time = record["unixReviewTime"]
        if isinstance(time, bool) or not isinstance(time, int | float | str):
            time = None
        try:
            time = int(float(time)) if time is not None else None
        except ValueError:
            time = None
        if time is None:
            value = record["unixReviewTime"]
            raise InputError(f"{path} line {number}: unixReviewTime {value!r} is not a number")
        users.append(str(record["reviewerID"]))
        items.append(str(record["asin"]))
        times.append(time)
        rows.append(number - 1)
    frame = pl.DataFrame(
        {"user_id": users, "item_id": items, "timestamp": times, "row": rows},
        schema={"user_id": pl.String, "item_id": pl.String, "timestamp": pl.Int64, "row": pl.Int64},
    )
    return Table(frame, path, 1)


def _parse_loose(text: str) -> Any:
    """A Python dict literal (the 2014 metadata format) or, failing that, strict JSON."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return json.loads(text)


def _price(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:.2f}"
    return str(value).strip() if value is not None else ""


def amazon_text(record: dict[str, Any]) -> str:
    """TIGER-style item text from title, brand, categories (flattened, de-duplicated) and price."""
    parts = []
    title = str(record.get("title") or "").strip()
    if title:
        parts.append(f"Title: {title}.")
    brand = str(record.get("brand") or "").strip()
    if brand:
        parts.append(f"Brand: {brand}.")
    categories: list[str] = []
    for path in record.get("categories") or []:
        for name in path if isinstance(path, list | tuple) else [path]:
            name = str(name).strip()
            if name and name not in categories:
                categories.append(name)
    if categories:
        parts.append(f"Categories: {', '.join(categories)}.")
    price = _price(record.get("price"))
    if price:
        parts.append(f"Price: {price}.")
    return " ".join(parts)


def read_meta(path: Path, wanted: set[str] | None = None) -> Table:
    """Metadata as a table of ``item_id``, ``text``, ``row``.

    Args:
        path: ``meta_<Category>.json.gz``.
        wanted: only parse lines whose ``asin`` is in this set (the metadata files list far more
            items than the 5-core reviews use); None parses every line.

    Raises:
        InputError: a line that cannot be parsed or has no ``asin``.
    """
    ids, texts, rows = [], [], []
    for number, text in _lines(path, path.name):
        found = _ASIN.search(text)
        if wanted is not None and found is not None and found.group(1) not in wanted:
            continue
        try:
            record = _parse_loose(text)
        except json.JSONDecodeError:
            raise InputError(f"{path} line {number}: neither a Python dict literal nor JSON") from None
        if not isinstance(record, dict) or "asin" not in record:
            raise InputError(f"{path} line {number}: missing field 'asin'")
        if wanted is not None and record["asin"] not in wanted:
            continue
        ids.append(str(record["asin"]))
        texts.append(amazon_text(record))
        rows.append(number - 1)
    frame = pl.DataFrame(
        {"item_id": ids, "text": texts, "row": rows},
        schema={"item_id": pl.String, "text": pl.String, "row": pl.Int64},
    )
    return Table(frame, path, 1)


def load_amazon(folder: Path, category: str) -> RawSource:
    """Read one Amazon 2014 category (only metadata lines of reviewed items are parsed)."""
    reviews_path, meta_path = amazon_files(Path(folder), category)
    reviews = read_reviews(reviews_path)
    meta = read_meta(meta_path, wanted=set(reviews.frame["item_id"].unique().to_list()))
    return RawSource(name=f"amazon-{category}", interactions=reviews, items=meta)
