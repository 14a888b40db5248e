"""One writer per directory: an advisory lock that dies with the process holding it.

`flock` locks belong to an open file, so the kernel releases them when the process ends, however
it ends (kill -9 included): a stale lock file never blocks a rerun. The file keeps the holder's
process id, so a refused second writer can say which process is at work.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Iterator

from zoo.common.errors import ZooError
from zoo.common.files import reporting_write_errors

LOCK_FILE = ".lock"


class DirectoryBusy(ZooError):
    """Another live process is writing the directory."""


@contextlib.contextmanager
def exclusive(directory: str | Path, what: str = "run directory", wait: bool = False) -> Iterator[None]:
    """Holds `directory`'s lock for the block; raises DirectoryBusy if a live process holds it (or,
    with `wait`, waits for that process to finish)."""
    directory = Path(directory)
    path = directory / LOCK_FILE
    with reporting_write_errors(path):  # a read-only or full disk shows here first
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise DirectoryBusy(f"{what} {directory} is in use by process {holder}; wait for it to finish, "
                                "or use another --workdir") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock; the file stays, harmless, for the next holder
