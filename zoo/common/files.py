"""Writing files safely: atomically (never half-written), and regenerated sections of documents."""
from __future__ import annotations

import json
import os
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
