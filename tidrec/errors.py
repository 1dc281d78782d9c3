"""User-facing errors: the CLIs print these as one line and exit non-zero, no traceback."""


class TidrecError(Exception):
    """A problem the user can fix (bad input, bad option, missing resource)."""


class InputError(TidrecError):
    """An input file does not hold what was expected. The message names the file and the problem."""


class ConfigError(TidrecError, ValueError):
    """An option has a value outside what it accepts."""
