"""Files written safely: atomic replacement, and the lock that keeps two pulls off one output.

Both are plain, synchronous helpers (callers run them off the event loop where it matters).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from callsessions.errors import OutputLockedError

__all__ = [
    "OutputLock",
    "atomic_file",
    "atomic_write",
    "create_file",
    "fsync_dir",
    "lock_path",
    "temp_name",
]


def create_file(path: Path) -> BinaryIO:
    """A new file for writing, created with the umask's usual mode (0644 under umask 022,
    as ``open`` would; ``tempfile`` would make it 0600); fails if ``path`` exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    return os.fdopen(fd, "wb")


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: not every file system allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def temp_name(path: Path) -> Path:
    """A temporary name beside ``path``, hidden and ending in ``.tmp`` (so that no glob for
    the output's extension ever matches it), unique per call."""
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """Write ``path`` in one step: yields a temporary file beside it; on a clean exit it is
    fsynced and renamed over ``path`` (then the folder is fsynced); on an error it is
    removed. A crash leaves the old file or the new one, never a mix."""
    tmp = temp_name(path)
    fh = create_file(tmp)
    try:
        yield fh
        fh.flush()
        os.fsync(fh.fileno())
        fh.close()
        os.replace(tmp, path)
    except BaseException:
        fh.close()
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (see ``atomic_file``); mode 0644 under
    umask 022."""
    with atomic_file(path) as fh:
        fh.write(data)


def lock_path(out: Path) -> Path:
    """The lock file of an output: ``<out>.lock`` beside it."""
    return out.with_name(out.name + ".lock")


class OutputLock:
    """An OS advisory lock (``flock``) on ``<out>.lock`` for the whole of a run.

    The kernel drops the lock when the process ends, however it ends, so a crashed run never
    leaves a stale lock. The file holds the holder's pid (for the message a second run
    shows) and is removed on release. Removal is safe against a racing run: after locking,
    the holder checks that the path still names the file it locked, and tries again if not.
    """

    def __init__(self, out: Path) -> None:
        self.out = out
        self.path = lock_path(out)
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise ``OutputLockedError`` at once (never waits)."""
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = _read_pid(fd)
                os.close(fd)
                raise OutputLockedError(str(self.out), pid) from None
            except BaseException:
                os.close(fd)
                raise
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the previous holder removed it meanwhile: lock the new one
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        """Drop the lock and remove the lock file (idempotent)."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
