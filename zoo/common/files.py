"""Writing files safely: atomically (never half-written), failures as one line, and regenerated
sections of documents.

A file is written through a temporary file and a rename (`write_atomic`); something a library
writes itself, a file or a whole directory, is written at `staging_path(final)` and moved into
place by `install` (`write_atomic_with` does both for a file), so a reader sees the old version
or the new one, never a half-written one. A write that the operating system refuses (a full
disk, a read-only or forbidden directory) becomes a `WriteFailed` naming the path and the OS's
reason, exit status 1; what was there before is left as it was.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

from zoo.common.errors import ZooError


class WriteFailed(ZooError):
    """A file or directory could not be written; what was there before is intact."""

    exit_code = 1


@contextlib.contextmanager
def reporting_write_errors(path: str | Path) -> Iterator[None]:
    """Turns an OSError raised while writing `path` (or a file under it) into a one-line WriteFailed."""
    try:
        yield
    except OSError as error:
        code = errno.errorcode.get(error.errno, "") if error.errno else ""
        reason = os.strerror(error.errno) if error.errno else str(error)
        # Guarding a whole directory, the file the OS names says more; guarding one file, its
        # final name does (not the temporary it was being written through).
        where = error.filename if error.filename and Path(path).is_dir() else path
        raise WriteFailed(f"cannot write {where}: {reason}{f' ({code})' if code else ''}; what was written "
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

    The temporary is `staging_path(path)`; on any failure it is removed and `path` keeps its old
    content.
    """
    path = Path(path)
    tmp = staging_path(path)
    with reporting_write_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            write(tmp)
            install(tmp, path)
        except BaseException:
            remove(tmp)
            raise


def staging_path(final: str | Path) -> Path:
    """Where to write what will become `final`: a hidden sibling ending as it does (Keras checks
    `.keras` and `.weights.h5`)."""
    final = Path(final)
    return final.with_name(f".tmp.{final.name}")


def remove(path: str | Path) -> None:
    """Deletes a file or a directory tree, if there is one."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def disk_size(path: str | Path) -> int:
    """The bytes of a file, or of all the files under a directory."""
    path = Path(path)
    return path.stat().st_size if path.is_file() else sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def install(staged: str | Path, final: str | Path) -> None:
    """Moves a finished file or directory from `staged` to `final`, replacing what was there.

    A file is replaced by one rename. A directory cannot be renamed over a non-empty one, so the
    old one is renamed aside first and deleted after: `final` is missing only between two renames.
    """
    staged, final = Path(staged), Path(final)
    if not (staged.is_dir() and final.is_dir()):
        os.replace(staged, final)
        return
    old = final.with_name(f".{final.name}.old")
    remove(old)
    os.replace(final, old)
    os.replace(staged, final)
    remove(old)


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
