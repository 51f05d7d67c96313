"""A real redis-server for the tests, started and stopped by the tests themselves.

``running_redis_server()`` starts ``redis-server`` on a free loopback port in a temporary
directory with persistence off (``--save '' --appendonly no``), waits (bounded) until it
answers PING, yields its URL and stops it (terminate, wait, kill if it will not go). There is
no in-memory fake: a missing ``redis-server`` is an error that says how to install it, never a
silent skip (``.ci/run`` installs it where it is missing).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import redis

__all__ = ["RedisServerError", "find_redis_server", "running_redis_server"]

INSTALL_HINT = (
    "install it (Debian/Ubuntu: `apt-get install -y redis-server`; macOS: `brew install redis`)"
    " or run .ci/run, which installs it where it is missing"
)


class RedisServerError(RuntimeError):
    """redis-server is missing, or did not start."""


def find_redis_server(name: str = "redis-server") -> str:
    """The path of ``name`` on PATH, or an error that says how to install it."""
    path = shutil.which(name)
    if path is None:
        raise RedisServerError(
            f"{name!r} is not on PATH: the worker tests need a real Redis; {INSTALL_HINT}"
        )
    return path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers_ping(port: int) -> bool:
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.2)
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False
    finally:
        client.close()


def _stop(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


def _start(exe: str, workdir: Path, timeout: float) -> tuple[subprocess.Popen[bytes], int]:
    """Start one server on a fresh port; wait until it answers or fail with its log."""
    port = _free_port()
    logfile = workdir / f"redis-{port}.log"
    with logfile.open("wb") as out:
        proc = subprocess.Popen(
            [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(workdir)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        if _answers_ping(port):
            return proc, port
        time.sleep(0.02)
    _stop(proc)
    tail = logfile.read_text(errors="replace")[-2000:]
    raise RedisServerError(f"redis-server on port {port} did not answer PING:\n{tail}")


@contextmanager
def running_redis_server(
    executable: str = "redis-server", *, startup_timeout: float = 10.0, attempts: int = 3
) -> Iterator[str]:
    """Run a private redis-server for the duration of the block; yield its URL (db 0).

    A port taken between choosing it and binding it makes the server exit at once; then a new
    port is tried, up to ``attempts`` times.
    """
    exe = find_redis_server(executable)
    with tempfile.TemporaryDirectory(prefix="callsessions-redis-") as tmp:
        error: RedisServerError | None = None
        for _ in range(attempts):
            try:
                proc, port = _start(exe, Path(tmp), startup_timeout)
            except RedisServerError as exc:
                error = exc
                continue
            try:
                yield f"redis://127.0.0.1:{port}/0"
            finally:
                with suppress(OSError):
                    _stop(proc)
            return
        assert error is not None
        raise error
