"""The SID table: each item's unique code tuple, saved as Parquet that describes itself."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tidrec.errors import InputError
from tidrec.io import atomic_path

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

    def __post_init__(self) -> None:
        if self.codes.ndim != 2 or self.codes.shape != (len(self.item_ids), len(self.level_sizes)):
            raise ValueError(
                f"codes must be ({len(self.item_ids)}, {len(self.level_sizes)}), got {self.codes.shape}"
            )
        if len(self.codes) and (self.codes.min() < 0 or (self.codes >= np.asarray(self.level_sizes)).any()):
            raise ValueError("codes out of range for level_sizes")

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
            **(extra or {}),
        }
        table = pa.table(columns).replace_schema_metadata({_META_KEY: json.dumps(meta).encode()})
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)

    @classmethod
    def load(cls, path: str | Path) -> SidTable:
        """Read a table written by :meth:`save`.

        Raises:
            InputError: missing file, not a SID table, or contents that do not match its hash.
        """
        path = Path(path)
        if not path.exists():
            raise InputError(f"{path}: SID table not found (run python -m tidrec.tokenize first)")
        table = pq.read_table(path)
        raw = (table.schema.metadata or {}).get(_META_KEY)
        if raw is None:
            raise InputError(f"{path}: not a tidrec SID table (metadata missing)")
        meta = json.loads(raw)
        levels = len(meta["level_sizes"])
        codes = np.stack([table[f"code_{lv}"].to_numpy() for lv in range(levels)], axis=1)
        sids = cls(
            item_ids=table["item_id"].to_numpy(zero_copy_only=False).astype(str),
            codes=codes.astype(np.int64),
            level_sizes=tuple(meta["level_sizes"]),
            dataset_hash=meta["dataset_hash"],
        )
        if sids.content_hash() != meta["content_hash"]:
            raise InputError(f"{path}: contents do not match the hash stored in the file")
        return sids

    @staticmethod
    def metadata(path: str | Path) -> dict:
        """The metadata stored with a saved table (level sizes, hashes, tokenizer config)."""
        raw = (pq.read_schema(path).metadata or {}).get(_META_KEY)
        return json.loads(raw) if raw else {}
