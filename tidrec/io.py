"""Artifact files: atomic writes, checked output folders, and reads that fail in one line.

Writes go to a temp file beside the target, then a rename, so an interrupted run never leaves a
half-written file that a later stage would trust. Files read back are untrusted: the readers here
turn every library error into an :class:`~tidrec.errors.InputError` naming the file and the
command that recreates it.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tidrec.errors import ConfigError, InputError

if TYPE_CHECKING:
    import pyarrow as pa


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()
"""The process umask, read once at import (reading it means setting it)."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``path`` on success.

    On any exception the temporary file is removed and ``path`` is left untouched. The file gets
    the permissions a plain ``open`` would give it (``mkstemp`` alone makes it owner-only).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_stale_temporaries(target: Path) -> None:
    """Delete ``.{target.name}.*.tmp`` files beside ``target``: what a killed write of it left behind.

    A write interrupted by an exception cleans up after itself, but ``kill -9`` or a power cut leaves
    its temporary file; the next write of the same artifact removes it. Runs that write the same
    file at the same time are not supported (one of them would lose its temporary file).
    """
    for stale in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
            stale.unlink()


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):  # numpy scalars and arrays
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


# ----------------------------------------------------------------------------- output folders


def check_output_dir(path: str | os.PathLike[str], flag: str = "--out", *, create: bool = False) -> None:
    """Refuse an output folder that is a file, lies under a file, or cannot be created or written.

    Without ``create`` nothing is touched (a config's validation); with it the folder is created,
    which also catches what permission bits do not show (a read-only mount, root under /sys).

    Raises:
        ConfigError: one line naming ``flag``, the folder and the reason.
    """
    path = Path(path)
    existing = path
    try:
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if existing.exists() and not existing.is_dir():
            where = "is a file" if existing == path else f"cannot be created: {existing} is a file"
            raise ConfigError(f"{flag} {path} {where}, expected a folder")
        writable = os.access(existing, os.W_OK | os.X_OK)
    except OSError as error:
        raise ConfigError(f"{flag} {path}: cannot create or write ({error.strerror or error})") from None
    if not writable:
        raise ConfigError(f"{flag} {path}: cannot create or write (Permission denied)")
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(f"{flag} {path}: cannot create or write ({error.strerror or error})") from None


# ----------------------------------------------------------------------------- reading artifacts


def _reason(error: BaseException) -> str:
    """The first line of an error's message (its type when empty), short enough for one line."""
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:160]


def read_json_object(path: str | os.PathLike[str], *, remedy: str) -> dict[str, Any]:
    """The JSON object stored in ``path``.

    Args:
        path: a JSON file written by tidrec.
        remedy: what recreates the file, e.g. ``"re-run python -m tidrec.fit"``; ends the message.

    Raises:
        InputError: the file is missing or unreadable, not UTF-8, not JSON, or not a JSON object.
    """
    path = Path(path)
    try:
        obj = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: file not found; {remedy}") from None
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: not a UTF-8 text file (byte {error.start}); {remedy}") from None
    except json.JSONDecodeError as error:
        raise InputError(f"{path}: not valid JSON ({error.msg} at line {error.lineno}); {remedy}") from None
    except OSError as error:
        raise InputError(f"{path}: cannot read ({error.strerror or error}); {remedy}") from None
    if not isinstance(obj, dict):
        raise InputError(f"{path}: expected a JSON object, found a {type(obj).__name__}; {remedy}")
    return obj


def parse_json_object(text: str | bytes, *, source: str | os.PathLike[str], remedy: str) -> dict[str, Any]:
    """The JSON object in ``text`` (e.g. metadata embedded in another file), named ``source`` in errors.

    Raises:
        InputError: not UTF-8, not JSON, or not a JSON object.
    """
    try:
        obj = json.loads(text)
    except UnicodeDecodeError as error:
        raise InputError(f"{source}: not UTF-8 (byte {error.start}); {remedy}") from None
    except json.JSONDecodeError as error:
        raise InputError(f"{source}: not valid JSON ({error.msg}); {remedy}") from None
    if not isinstance(obj, dict):
        raise InputError(f"{source}: expected a JSON object, found a {type(obj).__name__}; {remedy}")
    return obj


def read_parquet(path: str | os.PathLike[str], *, columns: Sequence[str] = (), remedy: str) -> pa.Table:
    """A Parquet file as a pyarrow Table that has ``columns``.

    Args:
        path: a Parquet file written by tidrec.
        columns: columns the file must have.
        remedy: what recreates the file, e.g. ``"re-run python -m tidrec.tokenize"``; ends the message.

    Raises:
        InputError: the file is missing, not Parquet, truncated or corrupt, or lacks a column.
    """
    import pyarrow.parquet as pq

    table = _read_parquet(pq.read_table, path, remedy)
    missing = [name for name in columns if name not in table.column_names]
    if missing:
        has = ", ".join(table.column_names) or "none"
        raise InputError(f"{path}: missing column(s) {', '.join(missing)} (has {has}); {remedy}")
    return table


def read_parquet_schema(path: str | os.PathLike[str], *, remedy: str) -> pa.Schema:
    """The schema (with its metadata) of a Parquet file, without reading its data.

    Raises:
        InputError: the file is missing, not Parquet, truncated or corrupt.
    """
    import pyarrow.parquet as pq

    return _read_parquet(pq.read_schema, path, remedy)


def _read_parquet(reader: Any, path: str | os.PathLike[str], remedy: str) -> Any:
    import pyarrow as pa

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found; {remedy}")
    try:
        return reader(path)
    except (pa.ArrowException, OSError, ValueError, EOFError) as error:
        raise InputError(f"{path}: not a readable Parquet file ({_reason(error)}); {remedy}") from None
