"""User-facing errors: one line that names the problem, and exit status 2 for every command.

Everything a user can get wrong (a config, an argument, an image, a dataset name) raises a
`ZooError`; the command-line entry points turn it into one line on stderr and exit status 2.
"""
from __future__ import annotations

import difflib
import functools
import sys
from typing import Callable, Iterable, Sequence, TypeVar

EXIT_USAGE = 2


def few(items: Sequence[object], limit: int = 3) -> str:
    """The first `limit` items for a one-line message, with ", ..." when there are more."""
    return ", ".join(map(str, items[:limit])) + (", ..." if len(items) > limit else "")


class ZooError(Exception):
    """A problem with the user's input, reported as one line without a traceback."""

    exit_code = EXIT_USAGE


class ConfigError(ZooError):
    """A config value that is missing, unknown, of the wrong type or out of range.

    Formats as `SOURCE: KEY.PATH: MESSAGE`, the source being the file (or `--set`) it came from.
    """

    def __init__(self, message: str, *, source: str | None = None, key: str | None = None):
        self.source, self.key, self.message = source, key, message
        super().__init__(": ".join(part for part in (source, key, message) if part))

    def located(self, source: str | None = None, key_prefix: str | None = None) -> "ConfigError":
        """The same error with a source and an outer key path added (inner paths are kept)."""
        key = self.key
        if key_prefix:
            key = f"{key_prefix}.{key}" if key and not key.startswith("[") else f"{key_prefix}{key or ''}"
        return ConfigError(self.message, source=self.source or source, key=key)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest choice, or '' when none is close."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def unknown(what: str, word: str, choices: Iterable[str]) -> str:
    """A message for an unknown name: what was received, the closest match and the choices."""
    choices = sorted(choices)
    return f"unknown {what} {word!r}{did_you_mean(word, choices)} (expected one of: {', '.join(choices)})"


def describe_exception(error: BaseException, limit: int = 240) -> str:
    """'ClassName: the first line of its message', for a library's exception inside a one-line error."""
    text = str(error).strip()
    first = text.splitlines()[0] if text else ""
    if len(first) > limit:
        first = first[:limit] + "..."
    return f"{error.__class__.__name__}: {first}" if first else error.__class__.__name__


F = TypeVar("F", bound=Callable[..., int | None])


def exits_cleanly(main: F) -> F:
    """Decorate a command's main(): a ZooError becomes one line on stderr and its exit status (2)."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except ZooError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(error.exit_code)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]
