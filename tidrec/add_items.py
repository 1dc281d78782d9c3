"""Items added to a run's catalogue after training: ``python -m tidrec.tokenize --out R --add-items F``.

The fitted tokenizer (``R/tokenizer/tokenizer.pt``) gives each new item a SID from its text, with no
refit: existing SIDs stay as they are and collision codes are extended (:meth:`SidTable.extend`).
The run's dataset grows by the new items, with no interactions yet (:meth:`Dataset.with_items`).
Both record what they extend, so a generative model trained on the run before serves the grown
catalogue without retraining; other models, whose item tables have no rows for the new items,
refuse the grown data with a one-line error.

The data is written first and the SID table last (its presence marks the end, as in
``tidrec.tokenize``): running the same command again after an interruption finishes the job.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from tidrec.data.dataset import Dataset, load_dataset
from tidrec.data.generic import item_texts, read_table, require_columns
from tidrec.data.preprocess import Table
from tidrec.errors import InputError
from tidrec.io import read_json_object, write_json
from tidrec.item_vectors import COOC, added_item_vectors
from tokenizer import load_tokenizer
from tokenizer.base import read_checkpoint
from tokenizer.sid_table import SidTable
from tokenizer.stats import shared_prefixes

MANIFEST_OWN_KEYS = ("name", "content_hash", "stats", "cold_from", "lineage")
"""Keys :meth:`Dataset.save` writes itself; a grown dataset keeps the manifest's others."""


@dataclasses.dataclass(frozen=True)
class NewItems:
    """The items of an ``--add-items`` file, in file order."""

    ids: list[str]
    texts: list[str]
    table: Table
    """The file as read, for error messages naming a line."""


def read_new_items(path: Path, *, id_column: str, text_columns: tuple[str, ...]) -> NewItems:
    """The ids and texts of an items file (CSV/TSV/Parquet, columns as for ``--dataset files``).

    Raises:
        InputError: a missing file or column, an empty id or text, or an id given twice (one line
            naming the file and line).
    """
    table = read_table(path)
    require_columns(table, {id_column: "--item-id-column", **{c: "--text-columns" for c in text_columns}})
    ids = table.frame[id_column].cast(pl.String).str.strip_chars()
    texts = item_texts(table, text_columns).fill_null("").str.strip_chars()
    seen: dict[str, int] = {}
    for position, (item, text) in enumerate(zip(ids.to_list(), texts.to_list(), strict=True)):
        where = table.where(int(table.frame["row"][position]))
        if not item:
            raise InputError(f"{where}: column {id_column!r} is empty")
        if not text:
            raise InputError(f"{where}: item {item!r} has no text in {', '.join(text_columns)}")
        if item in seen:
            raise InputError(f"{where}: item {item!r} is given twice (first at row {seen[item] + 1})")
        seen[item] = position
    return NewItems(ids.to_list(), texts.to_list(), table)


def base_dataset(dataset: Dataset, sids: SidTable, new: NewItems, data_dir: Path) -> Dataset:
    """The dataset the new items are added to: the run's, or, when an earlier run of the same
    command was interrupted after growing the data, the one it grew from.

    Raises:
        InputError: a new item id is already in the catalogue.
    """
    known = set(dataset.item_ids.astype(str).tolist())
    present = [item for item in new.ids if item in known]
    start = dataset.num_items - len(new.ids)
    resumed = (
        len(present) == len(new.ids)
        and sids.num_items == start
        and dataset.item_ids[start:].astype(str).tolist() == new.ids
        and dataset.item_texts[start:] == new.texts
        and bool(dataset.lineage)
        and dataset.lineage[-1][0] == start
        and dataset.extends(dataset.lineage[-1][1])
    )
    if resumed:
        return dataset.first_items(start)
    if present:
        position = new.ids.index(present[0])
        where = new.table.where(int(new.table.frame["row"][position]))
        raise InputError(f"{where}: item {present[0]!r} is already in the catalogue of {data_dir}")
    return dataset


def fitted_options(config: Any, extra: dict[str, Any]) -> Any:
    """``config`` with the item-vector options the tokenizer was fitted with (its checkpoint's record)."""
    parts = {part.get("part"): part for part in extra.get("item_vector_parts", []) if isinstance(part, dict)}
    cooc = parts.get(COOC, {})
    return dataclasses.replace(
        config,
        item_vectors=str(extra.get("item_vectors", "text")),
        embedding_model=str(extra.get("embedding_model", config.embedding_model)),
        cooc_window=int(cooc.get("window", config.cooc_window)),
        cooc_dim=int(cooc.get("dim", config.cooc_dim)),
        collab_weight=float(extra.get("collab_weight", 1.0)),
        cold_impute=int(extra.get("cold_impute", 0)),
        seed=int(extra.get("seed", config.seed)),
        add_items=None,
    )


def add_items(config: Any) -> SidTable:
    """Give the items of ``config.add_items`` SIDs with the run's fitted tokenizer and grow the run's
    dataset and SID table by them (``config`` is a ``TokenizeConfig``).

    Raises:
        InputError: no tokenized run at ``config.out``, a SID table its tokenizer did not make or made
            for other data, a bad items file, an id already in the catalogue, or a full collision level.
        ConfigError: the embedding model cannot be loaded.
    """
    data_dir, folder = config.out / "data", config.out / "tokenizer"
    sids_path, tokenizer_path = folder / "sids.parquet", folder / "tokenizer.pt"
    dataset = load_dataset(data_dir)
    sids = SidTable.load(sids_path)
    extra = read_checkpoint(tokenizer_path)["extra"]
    fitted_hash = str(extra.get("sid_table_hash", ""))
    if not fitted_hash or not sids.extends(fitted_hash):
        raise InputError(
            f"{sids_path}: not made by {tokenizer_path} (which fitted SID table {fitted_hash[:12] or '?'}); "
            f"re-run python -m tidrec.tokenize --out {config.out}"
        )
    new = read_new_items(config.add_items, id_column=config.item_id_column, text_columns=config.text_columns)
    base = base_dataset(dataset, sids, new, data_dir)
    if sids.num_items != base.num_items or (sids.dataset_hash and sids.dataset_hash != base.content_hash):
        raise InputError(
            f"{sids_path}: built for dataset {sids.dataset_hash[:12]}, but {data_dir} is "
            f"{base.content_hash[:12]}; re-run python -m tidrec.tokenize --out {config.out}"
        )
    tokenizer = load_tokenizer(tokenizer_path, device=config.device)
    options = fitted_options(config, extra)

    vectors = added_item_vectors(
        options,
        base,
        lambda: options.embed(base.item_texts),
        options.embed(new.texts),  # (M, D) by the model the tokenizer was fitted with
        neighbours=config.cold_impute,
    )  # (M, E)
    codes = tokenizer.encode(vectors)  # (M, L - 1)
    grown_sids = sids.extend(np.array(new.ids), codes)
    grown = base.with_items(new.ids, new.texts)
    grown_sids = dataclasses.replace(grown_sids, dataset_hash=grown.content_hash)
    manifest = read_json_object(data_dir / "manifest.json", remedy="re-run python -m tidrec.data")
    grown.save(data_dir, manifest={k: v for k, v in manifest.items() if k not in MANIFEST_OWN_KEYS})
    meta = {k: v for k, v in SidTable.metadata(sids_path).items() if k not in SidTable.OWN_METADATA}
    fitted_rows = next((rows for rows, digest in sids.lineage if digest == fitted_hash), sids.num_items)
    fitted = sids.prefix(fitted_rows)  # the items the tokenizer was fitted on
    shares = shared_prefixes(fitted.codes[:, :-1], codes)
    write_json(
        folder / "added_items.json",
        {
            "items": len(new.ids),
            "file": str(config.add_items),
            "new_items_sharing_a_fitted_prefix": shares,
            "cold_impute": config.cold_impute,
            "dataset_hash": grown.content_hash,
            "sid_table_hash": grown_sids.content_hash(),
            "extends_sid_table": sids.content_hash(),
        },
    )
    grown_sids.save(sids_path, extra=meta)  # last: its presence marks the end
    print(
        f"added {len(new.ids)} items to {config.out} ({base.num_items} -> {grown.num_items}); share of them "
        f"whose first 1, 2, ... codes some fitted item also has: {', '.join(f'{s:.0%}' for s in shares)}"
    )
    print(f"wrote {data_dir} and {sids_path}; a generative model trained on this run serves them as it is")
    return grown_sids
