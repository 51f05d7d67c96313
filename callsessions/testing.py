"""A pytest plugin: the simulator as a fixture for your own tests (like moto, or pytest-httpx).

Installing ``callsessions`` registers it (entry point ``pytest11``); nothing to configure::

    from callsessions import CallSessionsClient, SessionQuery

    @pytest.mark.asyncio                     # strict mode; not needed in auto mode
    async def test_my_job(callsessions_sim):
        async with CallSessionsClient(callsessions_sim.url, token=callsessions_sim.token) as c:
            ids = [s.id async for s in c.sessions(SessionQuery())]
        assert sorted(ids) == sorted(callsessions_sim.matching_ids())

Fixtures:

* ``callsessions_sim``: a running simulator (a :class:`SimHandle`) built from
  ``callsessions_sim_config``;
* ``callsessions_sim_config``: its ``SimConfig`` (2,000 records, seed 0, no faults); override
  this fixture in a ``conftest.py`` to change the default simulator;
* ``callsessions_sim_factory``: ``callsessions_sim_factory(SimConfig(...))`` starts one more
  simulator with that configuration (as many per test as you like); all stop at teardown.

Why the server runs in a thread. An ``async def`` fixture needs a plugin to drive it, and
which one depends on the user's setup: pytest-asyncio in strict mode ignores it unless it is
declared with ``pytest_asyncio.fixture``, anyio wants its own marker, and a sync test has no
loop at all. So the fixtures here are plain *sync* fixtures: each factory owns one event loop
running in a daemon thread, and every simulator it starts is an aiohttp server on that loop.
The test talks to it over loopback HTTP from whatever loop (or none) the test uses, so the
fixtures work the same under pytest-asyncio strict or auto mode, anyio, ``asyncio.run`` or
``urllib``, and the module never imports pytest-asyncio. The price is that the simulator's
state belongs to another thread: :class:`SimHandle` therefore runs every read and every change
(faults, inserts, ground-truth queries, statistics) on the server's loop with
``call_soon_threadsafe`` and waits for the answer, and ``stats`` returns a snapshot rather than
the live counters. The wait blocks the caller briefly (the ground-truth query's own cost);
it never deadlocks, because the server's loop never waits for the test's.

Importing this module costs only the standard library and pytest; the simulator is imported
when a fixture first starts one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import threading
from collections.abc import Callable, Coroutine, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

if TYPE_CHECKING:
    from callsessions.sim import FaultConfig, SimConfig, SimServer, SimStats

__all__ = ["SimFactory", "SimHandle", "default_sim_config"]

T = TypeVar("T")

#: seconds to wait for the server's loop to start, start a server, answer a call or stop
_TIMEOUT = 60.0


def default_sim_config() -> SimConfig:
    """The configuration of ``callsessions_sim``: 2,000 records, seed 0, no faults."""
    from callsessions.sim import SimConfig

    return SimConfig(records=2_000, seed=0)


class _LoopThread:
    """An asyncio event loop running forever in a daemon thread, until :meth:`stop`."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._run, name="callsessions-sim-loop", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    @property
    def alive(self) -> bool:
        """Whether the loop's thread is still running."""
        return self._thread.is_alive()

    def in_loop(self) -> bool:
        """Whether the caller is running on the loop's own thread."""
        return threading.current_thread() is self._thread

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the loop's thread and return its result (or raise its error)."""
        if self.in_loop():
            return fn(*args)
        self._check_alive()
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(*args))
            except BaseException as exc:
                future.set_exception(exc)

        self.loop.call_soon_threadsafe(run)
        return future.result(_TIMEOUT)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the loop and wait for its result (from another thread)."""
        self._check_alive()
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(_TIMEOUT)

    def _check_alive(self) -> None:
        if not self.alive or self.loop.is_closed():
            raise RuntimeError("the simulator has been stopped (its fixture was torn down)")

    def stop(self) -> None:
        """Cancel what is left on the loop, stop it, join the thread and close the loop."""
        if self.alive:
            self.run(_wind_down())
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(_TIMEOUT)
        if not self._thread.is_alive() and not self.loop.is_closed():
            self.loop.close()


async def _wind_down() -> None:
    """Cancel every other task on the running loop, then shut its generators and executor."""
    me = asyncio.current_task()
    others = [task for task in asyncio.all_tasks() if task is not me]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)
    loop = asyncio.get_running_loop()
    await loop.shutdown_asyncgens()
    await loop.shutdown_default_executor()


async def _start_server(config: SimConfig, host: str, port: int) -> SimServer:
    from callsessions.sim import SimServer

    server = SimServer(config, host=host, port=port)
    await server.start()
    return server


def _snapshot(stats: SimStats) -> SimStats:
    """A copy of the counters and the log (each field copied), taken on the server's loop."""
    import attrs

    fields = [f for f in attrs.fields(type(stats)) if f.init]
    return attrs.evolve(stats, **{f.alias: copy.copy(getattr(stats, f.name)) for f in fields})


class SimHandle:
    """A simulator running on a background loop, safe to use from the test's thread.

    The addresses are plain values. Everything else (the token too) is run on the server's loop:
    the ground truth (``matching_ids``, ``matching_count``, ``records``), the faults
    (``faults``, ``set_faults``, ``update_faults``), ``insert``, ``mint_token`` and ``stats``
    (a snapshot; ``reset_stats`` clears the live counters). ``call(fn)`` runs
    ``fn(server)`` there for anything else :class:`~callsessions.sim.SimServer` offers.
    """

    def __init__(self, server: SimServer, loop: _LoopThread) -> None:
        self._server = server
        self._loop = loop
        self.config: SimConfig = server.config
        self.url: str = server.url
        self.search_url: str = server.search_url
        self.login_url: str = server.login_url
        self.refresh_url: str = server.refresh_url

    def __repr__(self) -> str:
        return f"<SimHandle {self.url} records={self.config.records} seed={self.config.seed}>"

    @property
    def token(self) -> str:
        """A token the simulator always accepts (send it as ``Authorization: Bearer ...``)."""
        return self.call(lambda s: s.token)

    def call(self, fn: Callable[[SimServer], T]) -> T:
        """Run ``fn(server)`` on the server's loop and return its result."""
        return self._loop.call(fn, self._server)

    # -- ground truth --------------------------------------------------------------------

    def matching_ids(self, params: Mapping[str, str] | None = None) -> list[str]:
        """Ids matching these wire parameters now, in sort order (paging ignored)."""
        return self.call(lambda s: s.matching_ids(dict(params or {})))

    def matching_count(self, params: Mapping[str, str] | None = None) -> int:
        """How many records match these wire parameters now."""
        return self.call(lambda s: s.matching_count(dict(params or {})))

    def records(
        self, params: Mapping[str, str] | None = None, **options: Any
    ) -> list[dict[str, Any]]:
        """The matching records themselves (``fields`` honoured), in sort order; ``options``
        are passed on to ``SimServer.records``."""
        return self.call(lambda s: s.records(dict(params or {}), **options))

    def insert(self, n: int = 1, **kwargs: Any) -> list[str]:
        """Insert ``n`` records now (see ``Dataset.insert``); return their ids."""
        return self.call(lambda s: s.insert(n, **kwargs))

    def mint_token(self, ttl: int | None = None) -> str:
        """A JWT valid ``ttl`` seconds from the simulator's clock."""
        return self.call(lambda s: s.mint_token(ttl))

    # -- what it received ----------------------------------------------------------------

    @property
    def stats(self) -> SimStats:
        """A snapshot of the counters of the requests received so far."""
        return self.call(lambda s: _snapshot(s.stats))

    def reset_stats(self) -> None:
        """Forget every request counted so far."""
        self.call(lambda s: s.stats.reset())

    # -- faults --------------------------------------------------------------------------

    @property
    def faults(self) -> FaultConfig:
        """The faults in force (frozen); assign a new ``FaultConfig`` to change them."""
        return self.call(lambda s: s.faults)

    @faults.setter
    def faults(self, faults: FaultConfig) -> None:
        self.set_faults(faults)

    def set_faults(self, faults: FaultConfig | None = None, **fields: Any) -> FaultConfig:
        """Replace the faults (``faults``, or ``FaultConfig(**fields)``); no arguments: none."""
        return self.call(lambda s: s.set_faults(faults, **fields))

    def update_faults(self, **changes: Any) -> FaultConfig:
        """Change some of the faults in force by name, keeping the others."""
        return self.call(lambda s: s.update_faults(**changes))


class SimFactory:
    """Starts simulators on one background loop; :meth:`close` stops them all.

    ``factory(SimConfig(...))`` returns a running :class:`SimHandle`; ``host`` and ``port``
    are those of :class:`~callsessions.sim.SimServer` (loopback, a free port by default).
    Usable outside pytest as a context manager.
    """

    def __init__(self) -> None:
        self._loop: _LoopThread | None = None
        self._servers: list[SimServer] = []
        self.handles: list[SimHandle] = []

    def __call__(
        self, config: SimConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> SimHandle:
        if config is None:
            config = default_sim_config()
        if self._loop is None:
            self._loop = _LoopThread()
        server = self._loop.run(_start_server(config, host, port))
        self._servers.append(server)
        handle = SimHandle(server, self._loop)
        self.handles.append(handle)
        return handle

    def close(self) -> None:
        """Stop every simulator started here, then the loop; safe to call twice."""
        loop, self._loop = self._loop, None
        if loop is None:
            return
        servers, self._servers = self._servers, []
        try:
            for server in reversed(servers):
                loop.run(server.close())
        finally:
            loop.stop()

    def __enter__(self) -> SimFactory:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@pytest.fixture
def callsessions_sim_factory() -> Iterator[SimFactory]:
    """Start simulators with ``callsessions_sim_factory(SimConfig(...))``; all stop after."""
    with SimFactory() as factory:
        yield factory


@pytest.fixture
def callsessions_sim_config() -> SimConfig:
    """The configuration of ``callsessions_sim``; override this fixture to change it."""
    return default_sim_config()


@pytest.fixture
def callsessions_sim(
    callsessions_sim_factory: SimFactory, callsessions_sim_config: SimConfig
) -> SimHandle:
    """A running simulator (2,000 records, seed 0, no faults unless the config is overridden)."""
    return callsessions_sim_factory(callsessions_sim_config)
