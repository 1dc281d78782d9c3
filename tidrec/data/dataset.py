"""The prepared dataset every stage reads: users' item sequences in time order, item texts.

A :class:`Dataset` is saved as a folder of Parquet files plus ``manifest.json`` and loaded back
with :func:`load_dataset`.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

from tidrec.errors import InputError
from tidrec.io import atomic_path, read_json_object, read_parquet, write_json

MIN_SEQUENCE_LENGTH = 3
"""Leave-one-out needs a training item, a validation target and a test target."""


@dataclass(frozen=True)
class Split:
    """One leave-one-out evaluation split: a history and one target item per user."""

    users: np.ndarray
    """(B,) int64 user_idx."""
    histories: list[np.ndarray]
    """B arrays of item_idx in time order."""
    targets: np.ndarray
    """(B,) int64 item_idx to be recommended."""

    def __len__(self) -> int:
        return len(self.users)

    def subset(self, rows: np.ndarray) -> Split:
        """The split restricted to the given row positions."""
        return Split(self.users[rows], [self.histories[i] for i in rows], self.targets[rows])


@dataclass(frozen=True, eq=False)
class Dataset:
    """Users' interaction sequences with item texts, indexed contiguously."""

    name: str
    user_ids: np.ndarray
    """(U,) str: user_idx -> the source's user id."""
    item_ids: np.ndarray
    """(I,) str: item_idx -> the source's item id."""
    item_texts: list[str]
    """(I,) the text embedded for each item."""
    offsets: np.ndarray
    """(U+1,) int64: user u's items are ``items[offsets[u]:offsets[u+1]]``."""
    items: np.ndarray
    """(nnz,) int64 item_idx, each user's in time order (ties broken by file order)."""
    timestamps: np.ndarray
    """(nnz,) int64 timestamps aligned with ``items``."""
    cold_from: int | None = None
    """Cold-start protocol: item_idx from this on are *cold*, held out of training (absent from
    :meth:`train_sequences`; they stay in evaluation histories and targets). None: no cold items."""
    lineage: tuple[tuple[int, str], ...] = ()
    """The datasets this one extends by items added after them (:meth:`with_items`), oldest first,
    as ``(items, content_hash)``: its first ``items`` items and every interaction are that dataset.
    A generative model trained on one of them serves this one (:meth:`extends`). Not hashed."""

    def __post_init__(self) -> None:
        if self.offsets.shape != (len(self.user_ids) + 1,):
            raise ValueError(f"offsets must be ({len(self.user_ids) + 1},), got {self.offsets.shape}")
        if self.items.shape != self.timestamps.shape or self.items.ndim != 1:
            raise ValueError(f"items {self.items.shape} and timestamps {self.timestamps.shape} differ")
        if len(self.item_texts) != len(self.item_ids):
            raise ValueError(f"{len(self.item_texts)} texts for {len(self.item_ids)} items")
        if self.cold_from is not None and not 0 < self.cold_from <= len(self.item_ids):
            raise ValueError(f"cold_from must be in 1..{len(self.item_ids)}, got {self.cold_from}")
        lengths = np.diff(self.offsets)
        if len(lengths) and lengths.min() < MIN_SEQUENCE_LENGTH:
            raise ValueError(f"every user needs >= {MIN_SEQUENCE_LENGTH} interactions")

    @property
    def num_users(self) -> int:
        return len(self.user_ids)

    @property
    def num_items(self) -> int:
        return len(self.item_ids)

    @property
    def num_interactions(self) -> int:
        return len(self.items)

    @property
    def lengths(self) -> np.ndarray:
        """(U,) sequence length of each user."""
        return np.diff(self.offsets)

    def sequence(self, user: int) -> np.ndarray:
        """User ``user``'s item_idx sequence in time order."""
        return self.items[self.offsets[user] : self.offsets[user + 1]]

    @property
    def num_warm_items(self) -> int:
        """Items that training sees: all, or those before ``cold_from``."""
        return self.num_items if self.cold_from is None else self.cold_from

    def train_sequences(self) -> list[np.ndarray]:
        """Each user's sequence without its last two items (validation and test targets), and
        without cold items (the cold-start protocol's held-out items)."""
        sequences = [self.sequence(u)[:-2] for u in range(self.num_users)]
        if self.cold_from is None:
            return sequences
        return [s[s < self.cold_from] for s in sequences]

    def split(self, name: Literal["valid", "test"]) -> Split:
        """Leave-one-out split: valid predicts ``s[-2]`` from ``s[:-2]``, test ``s[-1]`` from ``s[:-1]``."""
        if name not in ("valid", "test"):
            raise ValueError(f"split must be 'valid' or 'test', got {name!r}")
        cut = 2 if name == "valid" else 1
        users = np.arange(self.num_users, dtype=np.int64)
        histories = [self.sequence(u)[:-cut] for u in users]
        targets = self.items[self.offsets[1:] - cut].astype(np.int64)
        return Split(users, histories, targets)

    def with_items(self, item_ids: Sequence[str], texts: Sequence[str]) -> Dataset:
        """This dataset plus new items appended as item_idx ``I .. I + M - 1``, with no interactions
        yet (a catalogue grown after training); the lineage records this dataset.

        Raises:
            ValueError: an id already in the catalogue or repeated, or ids and texts of other lengths.
        """
        item_ids = [str(item) for item in item_ids]
        if len(item_ids) != len(texts):
            raise ValueError(f"{len(item_ids)} new item ids for {len(texts)} texts")
        clashes = set(item_ids) & set(self.item_ids.astype(str).tolist())
        if clashes or len(set(item_ids)) != len(item_ids):
            raise ValueError(f"new item ids must be new and distinct; {sorted(clashes)[:3]} already exist")
        return dataclasses.replace(
            self,
            item_ids=np.concatenate([self.item_ids.astype(str), np.array(item_ids, dtype=str)]),
            item_texts=[*self.item_texts, *map(str, texts)],
            lineage=(*self.lineage, (self.num_items, self.content_hash)),
        )

    def first_items(self, count: int) -> Dataset:
        """The dataset as it was before the items from ``count`` on were added (:meth:`with_items`).

        Raises:
            ValueError: an interaction or ``cold_from`` refers to an item from ``count`` on.
        """
        if not 0 < count <= self.num_items:
            raise ValueError(f"count must be in 1..{self.num_items}, got {count}")
        if (len(self.items) and self.items.max() >= count) or (self.cold_from or 0) > count:
            raise ValueError(f"items from {count} on have interactions; they were not added later")
        kept = tuple(step for step in self.lineage if step[0] < count)
        return dataclasses.replace(
            self, item_ids=self.item_ids[:count], item_texts=self.item_texts[:count], lineage=kept
        )

    def extends(self, content_hash: str) -> bool:
        """True when this dataset is the one with ``content_hash``, or grew from it by added items.

        The lineage is checked, not trusted: the recorded first items are hashed again.
        """
        if self.content_hash == content_hash:
            return True
        for count, digest in self.lineage:
            if digest == content_hash:
                try:
                    return self.first_items(count).content_hash == digest
                except ValueError:
                    return False
        return False

    @property
    def content_hash(self) -> str:
        """sha256 over ids, texts and sequences: what downstream artifacts were built from."""
        digest = hashlib.sha256()
        for array in (self.user_ids, self.item_ids):
            digest.update("\x1f".join(map(str, array)).encode("utf-8"))
            digest.update(b"\x1e")
        digest.update("\x1f".join(self.item_texts).encode("utf-8"))
        for array in (self.offsets, self.items, self.timestamps):
            digest.update(np.ascontiguousarray(array, dtype=np.int64).tobytes())
        if self.cold_from is not None:  # absent otherwise: older datasets keep their hash
            digest.update(f"cold_from={self.cold_from}".encode())
        return digest.hexdigest()

    def stats(self) -> dict[str, float]:
        """Users, items, interactions, density and history-length percentiles."""
        lengths = self.lengths
        percentiles = np.percentile(lengths, [5, 25, 50, 75, 95]) if len(lengths) else [0] * 5
        return {
            "users": self.num_users,
            "items": self.num_items,
            "interactions": self.num_interactions,
            "density": self.num_interactions / max(1, self.num_users * self.num_items),
            "length_min": int(lengths.min()) if len(lengths) else 0,
            **{f"length_p{p}": float(v) for p, v in zip((5, 25, 50, 75, 95), percentiles, strict=True)},
            "length_max": int(lengths.max()) if len(lengths) else 0,
            **({"cold_items": self.num_items - self.cold_from} if self.cold_from is not None else {}),
        }

    def save(self, folder: str | Path, *, manifest: dict | None = None) -> None:
        """Write Parquet files and ``manifest.json`` (written last: its presence marks completion)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "manifest.json").unlink(missing_ok=True)
        user_of_row = np.repeat(np.arange(self.num_users, dtype=np.int64), self.lengths)
        tables = {
            "interactions.parquet": pl.DataFrame(
                {"user_idx": user_of_row, "item_idx": self.items, "timestamp": self.timestamps}
            ),
            "items.parquet": pl.DataFrame(
                {
                    "item_idx": np.arange(self.num_items, dtype=np.int64),
                    "item_id": self.item_ids.astype(str),
                    "text": self.item_texts,
                }
            ),
            "users.parquet": pl.DataFrame(
                {"user_idx": np.arange(self.num_users, dtype=np.int64), "user_id": self.user_ids.astype(str)}
            ),
        }
        for name, frame in tables.items():
            with atomic_path(folder / name) as tmp:
                frame.write_parquet(tmp)
        write_json(
            folder / "manifest.json",
            {
                "name": self.name,
                "content_hash": self.content_hash,
                "stats": self.stats(),
                **({"cold_from": self.cold_from} if self.cold_from is not None else {}),
                **({"lineage": [list(step) for step in self.lineage]} if self.lineage else {}),
                **(manifest or {}),
            },
        )


def load_dataset(folder: str | Path) -> Dataset:
    """Load a dataset saved by :meth:`Dataset.save`.

    Raises:
        InputError: the folder has no complete dataset, a file is unreadable, truncated or lacks a
            column, or the files do not match the manifest (one line naming the file).
    """
    folder = Path(folder)
    manifest_path = folder / "manifest.json"
    if not manifest_path.exists():
        raise InputError(f"{folder}: no prepared dataset here (manifest.json missing)")
    remedy = f"delete {folder} and prepare it again (python -m tidrec.data, or tidrec.tokenize for a run)"
    manifest = read_json_object(manifest_path, remedy=remedy)
    missing = [key for key in ("name", "content_hash") if key not in manifest]
    if missing:
        raise InputError(f"{manifest_path}: lacks {', '.join(missing)}; {remedy}")
    cold_from = manifest.get("cold_from")
    if cold_from is not None and (not isinstance(cold_from, int) or isinstance(cold_from, bool)):
        raise InputError(f"{manifest_path}: cold_from must be an item index, got {cold_from!r}; {remedy}")
    lineage = manifest.get("lineage", [])
    if not isinstance(lineage, list) or not all(
        isinstance(step, list) and len(step) == 2 and type(step[0]) is int and isinstance(step[1], str)
        for step in lineage
    ):
        raise InputError(f"{manifest_path}: lineage must be a list of [items, hash], got {str(lineage)[:80]}")
    tables = {
        name: pl.from_arrow(read_parquet(folder / name, columns=columns, remedy=remedy))
        for name, columns in (
            ("interactions.parquet", ("user_idx", "item_idx", "timestamp")),
            ("items.parquet", ("item_idx", "item_id", "text")),
            ("users.parquet", ("user_idx", "user_id")),
        )
    }
    try:
        inter = tables["interactions.parquet"]
        items = tables["items.parquet"].sort("item_idx")
        users = tables["users.parquet"].sort("user_idx")
        counts = np.bincount(inter["user_idx"].to_numpy(), minlength=users.height)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        dataset = Dataset(
            name=str(manifest["name"]),
            user_ids=users["user_id"].to_numpy().astype(str),
            item_ids=items["item_id"].to_numpy().astype(str),
            item_texts=[str(text) for text in items["text"].to_list()],
            offsets=offsets,
            items=inter["item_idx"].to_numpy().astype(np.int64),
            timestamps=inter["timestamp"].to_numpy().astype(np.int64),
            cold_from=cold_from,
            lineage=tuple((count, digest) for count, digest in lineage),
        )
    except (ValueError, TypeError, pl.exceptions.PolarsError) as error:
        reason = str(error).splitlines()[0][:160] if str(error) else type(error).__name__
        raise InputError(f"{folder}: the Parquet files do not form a dataset ({reason}); {remedy}") from None
    if dataset.content_hash != manifest["content_hash"]:
        raise InputError(f"{folder}: files do not match manifest.json (content hash differs)")
    return dataset


def hold_out_cold_items(dataset: Dataset, share: float) -> Dataset:
    """The cold-start protocol: the newest ``share`` of the catalogue, by each item's first
    interaction, becomes cold (numbered last, from ``cold_from``), so training never sees it.

    Items that arrived last in the timeline are the ones a live catalogue adds after a model was
    trained. (Cutting the timeline by interactions instead leaves MovieLens almost no cold items: the
    last 10 % of ML-1M's ratings bring 28 new films, 7 of them test targets.) Ties in arrival time go
    by item_idx. Items keep their order within the warm and the cold group; users and sequences are
    unchanged apart from the renumbering.

    Raises:
        ValueError: ``share`` outside (0, 1).
        InputError: no item, or every item, would be cold.
    """
    if not 0.0 < share < 1.0:
        raise ValueError(f"share must be in (0, 1), got {share}")
    count = round(share * dataset.num_items)
    if not 0 < count < dataset.num_items:
        raise InputError(
            f"dataset {dataset.name!r}: a cold-start share of {share} makes {count} of "
            f"{dataset.num_items} items cold; choose a share that leaves both warm and cold items"
        )
    first = np.full(dataset.num_items, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, dataset.items, dataset.timestamps)  # (I,) each item's first interaction
    cold = np.zeros(dataset.num_items, dtype=bool)
    cold[np.argsort(first, kind="stable")[-count:]] = True  # the last to arrive
    order = np.concatenate([np.flatnonzero(~cold), np.flatnonzero(cold)])  # new item_idx -> old
    renumber = np.empty_like(order)
    renumber[order] = np.arange(len(order))  # old item_idx -> new
    return Dataset(
        name=dataset.name,
        user_ids=dataset.user_ids,
        item_ids=dataset.item_ids[order],
        item_texts=[dataset.item_texts[i] for i in order],
        offsets=dataset.offsets,
        items=renumber[dataset.items],
        timestamps=dataset.timestamps,
        cold_from=int((~cold).sum()),
    )
