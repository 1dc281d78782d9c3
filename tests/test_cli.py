"""The config-to-flags helper every CLI is built on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from tidrec.cli import build_parser, check_range, field_docs, parse_config, run
from tidrec.errors import ConfigError, InputError


@dataclass(frozen=True, kw_only=True)
class _Base:
    seed: int = 0
    """Random seed."""


@dataclass(frozen=True, kw_only=True)
class _Config(_Base):
    out: Path
    """Output folder."""
    budget_ms: float = 50.0
    """Latency budget per batch, in milliseconds."""
    kind: Literal["rqvae", "rkmeans"] = "rqvae"
    """Which tokenizer."""
    levels: tuple[int, ...] = (256, 256, 256)
    """Codes per level."""
    limit: int | None = None
    """Optional cap."""
    verbose: bool = False
    """Print more."""

    def __post_init__(self) -> None:
        if self.budget_ms <= 0:
            raise ConfigError(f"budget_ms must be > 0, got {self.budget_ms}")


def test_flags_are_dashed_typed_and_documented():
    config = parse_config(
        _Config,
        ["--out", "r", "--budget-ms", "20", "--levels", "8", "8", "--limit", "none", "--verbose", "yes"],
        prog="t",
        description="d",
    )
    assert config == _Config(out=Path("r"), budget_ms=20.0, levels=(8, 8), limit=None, verbose=True)
    assert field_docs(_Config) == {
        "seed": "Random seed.",
        "out": "Output folder.",
        "budget_ms": "Latency budget per batch, in milliseconds.",
        "kind": "Which tokenizer.",
        "levels": "Codes per level.",
        "limit": "Optional cap.",
        "verbose": "Print more.",
    }
    help_text = build_parser(_Config, prog="t", description="d").format_help()
    assert "--budget-ms" in help_text and "Latency budget per batch" in help_text
    assert "--seed" in help_text  # inherited fields become flags too


def test_bad_choice_is_rejected_by_argparse(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_config(_Config, ["--out", "r", "--kind", "vq"], prog="t", description="d")
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_user_errors_become_one_line_and_exit_2(capsys):
    code = run(_Config, lambda c: None, ["--out", "r", "--budget-ms", "-1"], prog="t", description="d")
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == "t: error: budget_ms must be > 0, got -1.0"

    def stage(config):
        raise InputError("items.csv: row 3: item 'x' has two different texts")

    assert run(_Config, stage, ["--out", "r"], prog="t", description="d") == 2
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.parametrize(
    ("value", "limits", "message"),
    [
        (float("nan"), {"above": 0}, "--x must be a finite number > 0, got nan"),
        (float("inf"), {}, "--x must be a finite number, got inf"),
        (1.0, {"at_least": 0, "below": 1}, "--x must be a finite number >= 0 and < 1, got 1.0"),
        (0, {"at_least": 1}, "--x must be an integer >= 1, got 0"),
        (
            2**32,
            {"at_least": 0, "below": 2**32},
            "--x must be an integer >= 0 and < 4294967296, got 4294967296",
        ),
    ],
)
def test_check_range_names_the_flag_and_what_it_accepts(value, limits, message):
    with pytest.raises(ConfigError) as caught:
        check_range("--x", value, **limits)
    assert str(caught.value) == message
    check_range("--x", None, above=0)  # unset passes
    check_range("--x", 0.5, at_least=0, below=1)
