"""Writing files safely: atomically (never half-written), and regenerated sections of documents.

A file is written through a temporary file and a rename (`write_atomic`); something a library
writes itself, a file or a whole directory, is written at `staging_path(final)` and moved into
place by `install`, so a reader sees the old version or the new one, never a half-written one.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from zoo.common.errors import ZooError


def write_atomic(path: str | Path, text: str | bytes) -> None:
    """Writes `path` through a temporary file and a rename, so readers see the old or the new file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode() if isinstance(text, str) else text)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes owner-only files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def staging_path(final: str | Path) -> Path:
    """Where to write what will become `final`: a hidden sibling with the same suffix (Keras checks it)."""
    final = Path(final)
    return final.with_name(f".{final.stem}.tmp{final.suffix}")


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
