"""Writing files safely: atomically (never half-written), failures as one line, and regenerated
sections of documents.

A write that the operating system refuses (a full disk, a read-only or forbidden directory)
becomes a `WriteFailed` naming the path and the OS's reason, exit status 1; the file that was
there before is left as it was, since every write goes to a temporary file first.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

from zoo.common.errors import ZooError


class WriteFailed(ZooError):
    """A file or directory could not be written; what was there before is intact."""

    exit_code = 1


@contextlib.contextmanager
def reporting_write_errors(path: str | Path) -> Iterator[None]:
    """Turns an OSError raised while writing `path` into a one-line WriteFailed."""
    try:
        yield
    except OSError as error:
        code = errno.errorcode.get(error.errno, "") if error.errno else ""
        reason = os.strerror(error.errno) if error.errno else str(error)
        raise WriteFailed(f"cannot write {path}: {reason}{f' ({code})' if code else ''}; what was written "
                          "before is intact, and rerunning the same command continues once this is fixed") from None


def _usual_permissions(path: str | Path) -> None:
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)  # mkstemp makes owner-only files; give the usual permissions


def write_atomic(path: str | Path, text: str | bytes) -> None:
    """Writes `path` through a temporary file and a rename, so readers see the old or the new file."""
    path = Path(path)
    with reporting_write_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(text.encode() if isinstance(text, str) else text)
                handle.flush()
                os.fsync(handle.fileno())
            _usual_permissions(tmp)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def write_atomic_with(path: str | Path, write: Callable[[Path], None]) -> None:
    """Installs the file that `write(temporary_path)` writes at `path` with one rename.

    The temporary sits beside `path` with its suffix (Keras wants `.keras`). On any failure it is
    removed and `path` keeps its old content.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    with reporting_write_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            write(tmp)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def write_json(path: str | Path, data: Any) -> None:
    """Atomic, indented JSON."""
    write_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


def replace_between_markers(path: str | Path, marker: str, content: str) -> None:
    """Replaces what lies between `<!-- MARKER:start -->` and `<!-- MARKER:end -->` in a document."""
    path = Path(path)
    text = path.read_text()
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    if start not in text or end not in text:
        raise ZooError(f"{path}: expected the markers {start} and {end}, received a file without them")
    head, rest = text.split(start, 1)
    tail = rest.split(end, 1)[1]
    write_atomic(path, f"{head}{start}\n{content}\n{end}{tail}")
