"""From raw interactions and item texts to a :class:`~tidrec.data.dataset.Dataset`, with polars.

Every source (built-in, Amazon, generic files) is read into a :class:`RawSource`; :func:`build`
then validates it, applies the optional k-core filter, orders each user's interactions by time
(ties broken by file order) and numbers users and items contiguously **in order of first
appearance in the interactions file** (after filtering). Items no user interacted with are dropped
from the catalogue.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from tidrec.data.dataset import MIN_SEQUENCE_LENGTH, Dataset
from tidrec.errors import InputError


@dataclass(frozen=True)
class Table:
    """A frame read from a file, remembering where each row came from (for error messages)."""

    frame: pl.DataFrame
    """The rows; a ``row`` column (UInt32/Int64) holds each row's 0-based position in the file."""
    path: Path
    """The file it was read from."""
    first_line: int | None
    """Line number of row 0 in a text file (2 below a header); None for binary files (Parquet)."""

    def position(self, row: int) -> str:
        """``"line 7"`` for text files, ``"row 6"`` (1-based) for Parquet."""
        if self.first_line is None:
            return f"row {row + 1}"
        return f"line {row + self.first_line}"

    def where(self, row: int) -> str:
        """``"<path> line 7"``: the file and position of a row."""
        return f"{self.path} {self.position(row)}"


@dataclass(frozen=True)
class RawSource:
    """A source as read, before any filtering or indexing."""

    name: str
    """Dataset name recorded in the manifest."""
    interactions: Table
    """Columns ``user_id`` (str), ``item_id`` (str), ``timestamp`` (Int64 or Float64), ``row``."""
    items: Table
    """Columns ``item_id`` (str), ``text`` (str), ``row``; may list items nobody interacted with."""


def kcore_filter(frame: pl.DataFrame, k: int) -> pl.DataFrame:
    """Iteratively drop users and items with fewer than ``k`` interactions until none is left.

    Args:
        frame: interactions with ``user_id`` and ``item_id`` columns (other columns are kept).
        k: the core size; ``k <= 1`` returns ``frame`` unchanged.

    Returns:
        The rows of ``frame`` (in their original order) in which every user and every item has
        at least ``k`` interactions. May be empty.
    """
    if k <= 1:
        return frame
    while True:
        before = frame.height
        frame = frame.filter(pl.len().over("user_id") >= k)
        frame = frame.filter(pl.len().over("item_id") >= k)
        if frame.height == before:
            return frame


def _check_items(items: Table) -> pl.DataFrame:
    """One row per item id; refuses an id listed twice with different texts."""
    frame = items.frame
    conflicting = frame.filter(pl.col("text").n_unique().over("item_id") > 1)
    if conflicting.height:
        item = conflicting["item_id"][0]
        rows = conflicting.filter(pl.col("item_id") == item)["row"].to_list()[:2]
        raise InputError(
            f"{items.where(rows[1])}: item {item!r} has a different text than at {items.position(rows[0])}"
        )
    return frame.unique("item_id", keep="first", maintain_order=True)


def _check_short_users(inter: pl.DataFrame, source: RawSource, drop: bool) -> pl.DataFrame:
    """Drop (or refuse) users with fewer interactions than leave-one-out needs."""
    counts = pl.len().over("user_id")
    if drop:
        return inter.filter(counts >= MIN_SEQUENCE_LENGTH)
    short = inter.filter(counts < MIN_SEQUENCE_LENGTH)
    if short.height:
        user, row = short["user_id"][0], short["row"][0]
        count = short.filter(pl.col("user_id") == user).height
        noun = "interaction" if count == 1 else "interactions"
        raise InputError(
            f"{source.interactions.where(row)}: user {user!r} has {count} {noun}; leave-one-out needs "
            f">= {MIN_SEQUENCE_LENGTH} per user (drop such users with --drop-short-users true or --kcore 3)"
        )
    return inter


def build(source: RawSource, *, kcore: int = 0, drop_short_users: bool = False) -> Dataset:
    """Validate, filter, order and index a raw source.

    Args:
        source: interactions and item texts as read from the files.
        kcore: iterative k-core on users and items (0 or 1 = off).
        drop_short_users: drop users with fewer than 3 interactions (after the k-core) instead of
            refusing them.

    Returns:
        The dataset: users and items numbered by first appearance in the interactions file; each
        user's items sorted by timestamp, ties kept in file order.

    Raises:
        InputError: an item id with two texts, an interaction with an item the items file lacks, a
            user with fewer than 3 interactions (unless dropped), or nothing left after filtering.
    """
    items = _check_items(source.items)
    inter = source.interactions.frame
    missing = inter.join(items.select("item_id"), on="item_id", how="anti", maintain_order="left")
    if missing.height:
        raise InputError(
            f"{source.interactions.where(missing['row'][0])}: item {missing['item_id'][0]!r} is not in "
            f"{source.items.path}"
        )
    inter = kcore_filter(inter, kcore)
    inter = _check_short_users(inter, source, drop_short_users)
    if inter.height == 0:
        raise InputError(
            f"{source.interactions.path}: no interactions left after filtering (kcore={kcore}, "
            f"drop_short_users={drop_short_users})"
        )
    user_ids = inter["user_id"].unique(maintain_order=True)
    item_ids = inter["item_id"].unique(maintain_order=True)
    inter = inter.with_columns(
        user_idx=pl.col("user_id").replace_strict(user_ids, pl.int_range(user_ids.len(), eager=True)),
        item_idx=pl.col("item_id").replace_strict(item_ids, pl.int_range(item_ids.len(), eager=True)),
    ).sort(["user_idx", "timestamp", "row"])  # ties in time: file order
    texts = (
        pl.DataFrame({"item_id": item_ids})
        .join(items, on="item_id", how="left", maintain_order="left")["text"]
        .to_list()
    )
    counts = np.bincount(inter["user_idx"].to_numpy(), minlength=user_ids.len())
    times = inter["timestamp"].to_numpy()
    if times.dtype.kind == "f":
        times = np.floor(times)
    return Dataset(
        name=source.name,
        user_ids=user_ids.to_numpy().astype(str),
        item_ids=item_ids.to_numpy().astype(str),
        item_texts=texts,
        offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        items=inter["item_idx"].to_numpy().astype(np.int64),
        timestamps=times.astype(np.int64),
    )
