"""Command-line flags generated from frozen config dataclasses.

Each field becomes ``--field-name``; its attribute docstring becomes the ``--help`` text. A
:class:`~tidrec.errors.TidrecError` raised by the stage is printed as one line and exits 2, and so
is an OS error on a named file that the user fixes (permission denied, a file where a folder belongs).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import errno
import inspect
import itertools
import math
import operator
import sys
import textwrap
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from tidrec.errors import ConfigError, TidrecError

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


def check_range(
    flag: str,
    value: float | None,
    *,
    above: float | None = None,
    at_least: float | None = None,
    below: float | None = None,
    at_most: float | None = None,
) -> None:
    """Refuse an option value outside its range; a float must also be finite. None (unset) passes.

    Example: ``check_range("--dropout", 1.5, at_least=0, below=1)`` raises
    ``ConfigError("--dropout must be a finite number >= 0 and < 1, got 1.5")``.

    Raises:
        ConfigError: one line naming the flag, what it accepts and what it got.
    """
    if value is None:
        return
    limits = [
        (bound, sign, compare)
        for bound, sign, compare in (
            (above, ">", operator.gt),
            (at_least, ">=", operator.ge),
            (below, "<", operator.lt),
            (at_most, "<=", operator.le),
        )
        if bound is not None
    ]
    if math.isfinite(value) and all(compare(value, bound) for bound, _, compare in limits):
        return
    wanted = "an integer" if isinstance(value, int) else "a finite number"
    if limits:
        wanted += " " + " and ".join(f"{sign} {_number(bound)}" for bound, sign, _ in limits)
    raise ConfigError(f"{flag} must be {wanted}, got {value}")


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


_USER_OS_ERRORS = frozenset(
    {
        errno.EACCES,  # permission denied
        errno.EPERM,  # operation not permitted
        errno.EROFS,  # read-only file system
        errno.EISDIR,  # a folder where a file belongs
        errno.ENOTDIR,  # a file where a folder belongs
        errno.EEXIST,  # a file in the way
        errno.ENOSPC,  # disk full
        errno.EDQUOT,  # quota exceeded
    }
)
"""OS errors on a named file that the user fixes (permissions, a file where a folder belongs, a full
disk): the safety net of :func:`run` prints them as one line instead of a traceback."""


def _os_error_line(error: OSError) -> str:
    """``FILE: reason`` (``FILE -> OTHER: reason`` for a rename), e.g. ``runs/x: Permission denied``."""
    where = str(error.filename) + (f" -> {error.filename2}" if error.filename2 is not None else "")
    return f"{where}: {error.strerror or type(error).__name__}"


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
    except OSError as error:
        if error.errno not in _USER_OS_ERRORS or error.filename is None:
            raise
        print(f"{prog}: error: {_os_error_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; finished artifacts are kept, none is half-written", file=sys.stderr)
        return 130
    return 0
