"""Command-line flags generated from frozen config dataclasses.

Each field becomes ``--field-name``; its attribute docstring becomes the ``--help`` text. Every
stage also takes ``--config FILE`` (a YAML mapping of field names to values, read as if given as
flags; flags on the command line win) and ``--print-config`` (print the resolved config as YAML
and exit): a saved config fed back replays the run. A
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


def build_parser(
    config_cls: type,
    *,
    prog: str,
    description: str,
    aliases: dict[str, Sequence[str]] | None = None,
) -> argparse.ArgumentParser:
    """An argparse parser with one flag per field of ``config_cls``, plus ``--config`` and ``--print-config``.

    ``aliases`` maps a field name to extra flags for it (e.g. ``{"out": ["--run"]}``).
    """
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="YAML file of option values (field names as keys), read as if given as flags; flags win",
    )
    parser.add_argument(
        "--print-config", action="store_true", help="print the resolved config as YAML and exit"
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
        flags = ["--" + field.name.replace("_", "-"), *(aliases or {}).get(field.name, ())]
        parser.add_argument(*flags, dest=field.name, **kwargs)
    return parser


def read_config_file(config_cls: type, path: Path) -> dict[str, Any]:
    """Field values from a YAML file, converted to each field's type.

    Keys may be written with underscores or dashes; a key that is no field of ``config_cls``, or a
    value the field does not accept, is a one-line error.

    Raises:
        ConfigError: unreadable file, not a mapping, unknown key or bad value.
    """
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ConfigError(f"--config {path}: not a readable YAML file ({reason})") from None
    return config_values(config_cls, text, f"--config {path}")


def config_values(config_cls: type, text: str, where: str) -> dict[str, Any]:
    """Field values from YAML text (as :func:`read_config_file`); errors start with ``where``."""
    import yaml

    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ConfigError(f"{where}: not a readable YAML file ({reason})") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{where}: expected a mapping of option names to values")
    hints = typing.get_type_hints(config_cls)
    fields = {f.name for f in dataclasses.fields(config_cls) if f.init}
    values: dict[str, Any] = {}
    for key, value in loaded.items():
        name = str(key).replace("-", "_")
        if name not in fields:
            raise ConfigError(f"{where}: unknown option {key!r}")
        values[name] = _from_yaml(hints[name], value, f"{where}: {key}")
    return values


def _from_yaml(tp: Any, value: Any, where: str) -> Any:
    """A YAML value as the field type expects it (via the same conversion as the flag's text)."""
    if value is None:
        return None
    convert, extra = _converter(tp)
    try:
        if extra.get("nargs") == "+":
            items = value if isinstance(value, list) else [value]
            return [convert(str(item)) if convert else item for item in items]
        text = str(value).lower() if isinstance(value, bool) else str(value)
        converted = convert(text) if convert else value
    except (ValueError, TypeError, argparse.ArgumentTypeError) as error:
        raise ConfigError(f"{where}: {error}") from None
    choices = extra.get("choices")
    if choices is not None and converted not in choices:
        raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(str, choices))}")
    return converted


def config_yaml(config: Any) -> str:
    """``config`` as YAML (every init field; paths as text, tuples as lists), readable by ``--config``."""
    import yaml

    def plain(value: Any) -> Any:
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        return value

    values = {f.name: plain(getattr(config, f.name)) for f in dataclasses.fields(config) if f.init}
    return yaml.safe_dump(values, sort_keys=False, default_flow_style=False)


def parse_config(
    config_cls: type[C],
    argv: Sequence[str] | None,
    *,
    prog: str,
    description: str,
    aliases: dict[str, Sequence[str]] | None = None,
) -> C:
    """Parse ``argv`` and its ``--config`` file into a ``config_cls`` (its ``__post_init__`` validates)."""
    return _parse(config_cls, argv, prog=prog, description=description, aliases=aliases)[0]


def _parse(
    config_cls: type[C],
    argv: Sequence[str] | None,
    *,
    prog: str,
    description: str,
    aliases: dict[str, Sequence[str]] | None = None,
) -> tuple[C, bool]:
    """The config and whether ``--print-config`` was given."""
    parser = build_parser(config_cls, prog=prog, description=description, aliases=aliases)
    first = argparse.ArgumentParser(add_help=False)  # --config alone, before required flags are checked
    first.add_argument("--config", type=Path, default=None)
    known, _ = first.parse_known_args(argv)
    if known.config is not None:
        from_file = read_config_file(config_cls, known.config)
        for action in parser._actions:
            if action.dest in from_file:
                action.required = False
        parser.set_defaults(**from_file)
    namespace = vars(parser.parse_args(argv))
    namespace.pop("config")
    print_config = namespace.pop("print_config")
    hints = typing.get_type_hints(config_cls)
    for name, value in namespace.items():
        if isinstance(value, list) and typing.get_origin(hints[name]) is tuple:
            namespace[name] = tuple(value)
    return config_cls(**namespace), print_config


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
    resolve: Callable[[C], Any] | None = None,
    aliases: dict[str, Sequence[str]] | None = None,
) -> int:
    """Parse flags into a config, run ``stage`` on it, and turn user errors into one line.

    With ``--print-config`` the config is printed as YAML instead, after ``resolve`` (e.g. the
    merge of a model's preset with the flags), and nothing runs.
    """
    try:
        config, print_config = _parse(config_cls, argv, prog=prog, description=description, aliases=aliases)
        if print_config:
            print(config_yaml(resolve(config) if resolve else config), end="")
            return 0
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
