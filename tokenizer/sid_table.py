"""The SID table: each item's unique code tuple, saved as Parquet that describes itself."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tidrec.errors import InputError
from tidrec.io import atomic_path, parse_json_object, read_parquet, read_parquet_schema

_META_KEY = b"tidrec.sid_table"


@dataclass(frozen=True, eq=False)
class SidTable:
    """Item ids with their semantic IDs (code tuples); every row of ``codes`` is unique."""

    item_ids: np.ndarray
    """(I,) str; row i is the Dataset's item_idx i."""
    codes: np.ndarray
    """(I, L) int64; the last column is the collision code."""
    level_sizes: tuple[int, ...]
    """(L,) number of codes at each level; the last is the collision level's size."""
    dataset_hash: str = ""
    """``Dataset.content_hash`` of the dataset these SIDs were built for."""
    lineage: tuple[tuple[int, str], ...] = ()
    """The tables this one extends, oldest first, as ``(rows, content_hash)``: its first ``rows`` rows
    are that table (:meth:`extend` appends items without changing existing SIDs). A model trained on
    one of them can serve this table (:meth:`extends`)."""

    OWN_METADATA: ClassVar[tuple[str, ...]] = ("level_sizes", "dataset_hash", "content_hash", "lineage")
    """Metadata keys :meth:`save` writes from the table itself (the rest come from ``extra``)."""

    def __post_init__(self) -> None:
        if self.codes.ndim != 2 or self.codes.shape != (len(self.item_ids), len(self.level_sizes)):
            raise ValueError(
                f"codes must be ({len(self.item_ids)}, {len(self.level_sizes)}), got {self.codes.shape}"
            )
        if len(self.codes) and (self.codes.min() < 0 or (self.codes >= np.asarray(self.level_sizes)).any()):
            raise ValueError("codes out of range for level_sizes")

    def prefix(self, rows: int) -> SidTable:
        """The table of the first ``rows`` items (what an extended table started from)."""
        return SidTable(self.item_ids[:rows], self.codes[:rows], self.level_sizes, self.dataset_hash)

    def extends(self, content_hash: str) -> bool:
        """True when this table is the one with ``content_hash``, or starts with it row for row.

        The lineage is checked, not trusted: the first ``rows`` rows are hashed again.
        """
        if self.content_hash() == content_hash:
            return True
        return any(
            digest == content_hash and rows <= self.num_items and self.prefix(rows).content_hash() == digest
            for rows, digest in self.lineage
        )

    def extend(self, item_ids: np.ndarray, codes: np.ndarray) -> SidTable:
        """This table plus new items, whose SIDs a fitted tokenizer gave them; existing SIDs are kept.

        Args:
            item_ids: (M,) new item ids, none of them in the table.
            codes: (M, L - 1) the new items' code tuples before the collision code.

        Returns:
            A table with the new items appended as rows ``I .. I + M - 1``. Each new item's collision
            code is the next free one among the items (old and new) sharing its tuple, so every SID
            stays unique; the lineage records this table's rows and hash.

        Raises:
            InputError: an id already in the table or repeated, codes of the wrong shape or out of
                range, or a tuple whose collision level is full.
        """
        item_ids = np.asarray(item_ids).astype(str)
        codes = np.asarray(codes, dtype=np.int64)
        if codes.shape != (len(item_ids), self.num_levels - 1):
            raise InputError(
                f"new items: codes must be ({len(item_ids)}, {self.num_levels - 1}) (the tuple without the "
                f"collision code), got {codes.shape}"
            )
        known = set(self.item_ids.astype(str).tolist())
        seen: set[str] = set()
        for item in item_ids.tolist():
            if item in known:
                raise InputError(f"new items: item id {item!r} is already in the SID table")
            if item in seen:
                raise InputError(f"new items: item id {item!r} appears twice")
            seen.add(item)
        sizes = np.asarray(self.level_sizes[:-1])
        if len(codes) and (codes.min() < 0 or (codes >= sizes).any()):
            raise InputError(f"new items: codes out of range for the levels {tuple(self.level_sizes[:-1])}")
        taken: dict[tuple[int, ...], int] = {}
        for row in self.codes:
            key = tuple(row[:-1].tolist())
            taken[key] = max(taken.get(key, -1), int(row[-1]))
        collision = np.empty(len(codes), dtype=np.int64)
        for index, (item, row) in enumerate(zip(item_ids.tolist(), codes, strict=True)):
            key = tuple(row.tolist())
            collision[index] = taken[key] = taken.get(key, -1) + 1
            if collision[index] >= self.level_sizes[-1]:
                raise InputError(
                    f"new items: item {item!r} needs collision code {collision[index]} on the "
                    f"tuple {key}, but the collision level has {self.level_sizes[-1]} codes; re-run "
                    "python -m tidrec.tokenize with a larger --collision-size (and retrain)"
                )
        return SidTable(
            item_ids=np.concatenate([self.item_ids.astype(str), item_ids]),
            codes=np.concatenate([self.codes, np.concatenate([codes, collision[:, None]], axis=1)]),
            level_sizes=self.level_sizes,
            dataset_hash=self.dataset_hash,
            lineage=(*self.lineage, (self.num_items, self.content_hash())),
        )

    @property
    def num_items(self) -> int:
        return len(self.item_ids)

    @property
    def num_levels(self) -> int:
        return len(self.level_sizes)

    def content_hash(self) -> str:
        """sha256 of level sizes, item ids and codes: what a model was trained against."""
        digest = hashlib.sha256()
        digest.update(json.dumps(list(self.level_sizes)).encode())
        digest.update("\x1f".join(map(str, self.item_ids)).encode("utf-8"))
        digest.update(np.ascontiguousarray(self.codes, dtype=np.int64).tobytes())
        return digest.hexdigest()

    def save(self, path: str | Path, *, extra: dict | None = None) -> None:
        """Write Parquet (item_idx, item_id, code_0..code_{L-1}) with metadata, atomically."""
        columns = {
            "item_idx": pa.array(np.arange(self.num_items, dtype=np.int64)),
            "item_id": pa.array(self.item_ids.astype(str)),
        }
        for level in range(self.num_levels):
            columns[f"code_{level}"] = pa.array(self.codes[:, level].astype(np.int64))
        meta = {
            "level_sizes": list(self.level_sizes),
            "dataset_hash": self.dataset_hash,
            "content_hash": self.content_hash(),
            **({"lineage": [list(step) for step in self.lineage]} if self.lineage else {}),
            **(extra or {}),
        }
        table = pa.table(columns).replace_schema_metadata({_META_KEY: json.dumps(meta).encode()})
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)

    @classmethod
    def load(cls, path: str | Path) -> SidTable:
        """Read a table written by :meth:`save`.

        Raises:
            InputError: missing, unreadable or truncated file, not a SID table, or contents that do
                not match its hash (one line naming the file).
        """
        path = Path(path)
        if not path.exists():
            raise InputError(f"{path}: SID table not found (run python -m tidrec.tokenize first)")
        schema = read_parquet_schema(path, remedy=_REMEDY)
        meta = _metadata(path, schema)
        if meta is None:
            raise InputError(f"{path}: not a tidrec SID table (metadata missing); {_REMEDY}")
        missing = [key for key in ("level_sizes", "dataset_hash", "content_hash") if key not in meta]
        if missing:
            raise InputError(f"{path}: SID table metadata lacks {', '.join(missing)}; {_REMEDY}")
        level_sizes = meta["level_sizes"]
        if not isinstance(level_sizes, list) or not all(type(size) is int for size in level_sizes):
            raise InputError(f"{path}: SID table metadata has level_sizes {level_sizes!r}; {_REMEDY}")
        lineage = meta.get("lineage", [])
        if not isinstance(lineage, list) or not all(
            isinstance(step, list) and len(step) == 2 and type(step[0]) is int and isinstance(step[1], str)
            for step in lineage
        ):
            raise InputError(f"{path}: SID table metadata has lineage {str(lineage)[:80]}; {_REMEDY}")
        columns = ("item_id", *(f"code_{level}" for level in range(len(level_sizes))))
        table = read_parquet(path, columns=columns, remedy=_REMEDY)
        try:
            codes = np.stack([table[f"code_{lv}"].to_numpy() for lv in range(len(level_sizes))], axis=1)
            sids = cls(
                item_ids=table["item_id"].to_numpy(zero_copy_only=False).astype(str),
                codes=codes.astype(np.int64),
                level_sizes=tuple(level_sizes),
                dataset_hash=str(meta["dataset_hash"]),
                lineage=tuple((rows, digest) for rows, digest in lineage),
            )
        except (ValueError, TypeError, pa.ArrowException) as error:
            reason = str(error).splitlines()[0][:160] if str(error) else type(error).__name__
            raise InputError(f"{path}: not a valid SID table ({reason}); {_REMEDY}") from None
        if sids.content_hash() != meta["content_hash"]:
            raise InputError(f"{path}: contents do not match the hash stored in the file")
        return sids

    @staticmethod
    def metadata(path: str | Path) -> dict:
        """The metadata stored with a saved table (level sizes, hashes, tokenizer config); {} if none.

        Raises:
            InputError: the file is missing, not Parquet, or its metadata is not a JSON object.
        """
        return _metadata(Path(path), read_parquet_schema(path, remedy=_REMEDY)) or {}


_REMEDY = "re-run python -m tidrec.tokenize"
"""What recreates a SID table; ends the messages about a bad one."""


def _metadata(path: Path, schema: pa.Schema) -> dict | None:
    """The table's own metadata (None when the file has none), parsed as a JSON object."""
    raw = (schema.metadata or {}).get(_META_KEY)
    if raw is None:
        return None
    return parse_json_object(raw, source=f"{path} (SID table metadata)", remedy=_REMEDY)
