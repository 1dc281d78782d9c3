"""Command-line flags generated from frozen config dataclasses.

Each field becomes ``--field-name``; its attribute docstring becomes the ``--help`` text. A
:class:`~tidrec.errors.TidrecError` raised by the stage is printed as one line and exits 2.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import itertools
import sys
import textwrap
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from tidrec.errors import TidrecError

C = TypeVar("C")


def field_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings of a dataclass (and its bases), keyed by field name."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        body = ast.parse(source).body[0].body  # type: ignore[attr-defined]
        for node, nxt in itertools.pairwise(body):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)
            ):
                docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def _converter(tp: Any) -> tuple[Callable[[str], Any] | None, dict[str, Any]]:
    """argparse ``type=`` and extra kwargs for a field type."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        convert, extra = _converter(inner[0])

        def optional(text: str) -> Any:
            return None if text.lower() in {"none", "null", ""} else convert(text)  # type: ignore[misc]

        return optional, extra
    if origin is typing.Literal:
        return type(args[0]), {"choices": list(args)}
    if origin in (tuple, list):
        return _converter(args[0])[0], {"nargs": "+"}
    if tp is bool:
        return _parse_bool, {"metavar": "BOOL"}
    if tp in (int, float, str):
        return tp, {}
    if tp is Path:
        return Path, {}
    raise TypeError(f"no command-line conversion for {tp!r}")


def build_parser(config_cls: type, *, prog: str, description: str) -> argparse.ArgumentParser:
    """An argparse parser with one flag per field of ``config_cls``."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    docs = field_docs(config_cls)
    hints = typing.get_type_hints(config_cls)
    for field in dataclasses.fields(config_cls):
        if not field.init:
            continue
        convert, extra = _converter(hints[field.name])
        required = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        kwargs: dict[str, Any] = {"type": convert, "help": docs.get(field.name, " "), **extra}
        if required:
            kwargs["required"] = True
        else:
            default = (
                field.default if field.default is not dataclasses.MISSING else field.default_factory()  # type: ignore[misc]
            )
            kwargs["default"] = default
        parser.add_argument("--" + field.name.replace("_", "-"), dest=field.name, **kwargs)
    return parser


def parse_config(config_cls: type[C], argv: Sequence[str] | None, *, prog: str, description: str) -> C:
    """Parse ``argv`` into a ``config_cls`` instance (its ``__post_init__`` validates)."""
    parser = build_parser(config_cls, prog=prog, description=description)
    namespace = vars(parser.parse_args(argv))
    hints = typing.get_type_hints(config_cls)
    for name, value in namespace.items():
        if isinstance(value, list) and typing.get_origin(hints[name]) is tuple:
            namespace[name] = tuple(value)
    return config_cls(**namespace)


def run(
    config_cls: type[C],
    stage: Callable[[C], Any],
    argv: Sequence[str] | None,
    *,
    prog: str,
    description: str,
) -> int:
    """Parse flags into a config, run ``stage`` on it, and turn user errors into one line."""
    try:
        config = parse_config(config_cls, argv, prog=prog, description=description)
        stage(config)
    except TidrecError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; finished artifacts are kept, none is half-written", file=sys.stderr)
        return 130
    return 0
