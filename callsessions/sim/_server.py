"""Running the simulator: ``SimServer`` for tests, ``serve`` for the command line."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from aiohttp import web

from ._app import LOGIN_PATH, REFRESH_PATH, SEARCH_PATH, make_app
from ._config import FaultConfig, SimConfig
from ._data import Dataset
from ._state import SimState, SimStats

__all__ = ["SimServer", "serve"]


class SimServer:
    """The simulator on a loopback port, as an async context manager::

        async with SimServer(SimConfig(records=1000)) as sim:
            url = sim.url + "/api/v1/search/cis/calls"   # with "Authorization: Bearer " + sim.token

    ``port=0`` (the default) picks a free port; ``url`` is the service root, without a
    trailing slash. A ``dataset`` may be passed in to share one generated data set between
    servers (it is mutated by inserts).
    """

    def __init__(
        self,
        config: SimConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        dataset: Dataset | None = None,
    ) -> None:
        self.config = config if config is not None else SimConfig()
        self.host = host
        self.port = port
        self.state = SimState(self.config, dataset)
        self.app = make_app(state=self.state)
        self._runner: web.AppRunner | None = None

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Bind and start serving; ``url`` and ``port`` are then known."""
        runner = web.AppRunner(
            self.app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        server = site._server
        assert isinstance(server, asyncio.base_events.Server)
        self.port = server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop serving (handlers still running are cancelled)."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> SimServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- addresses -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The service root, e.g. ``http://127.0.0.1:54321`` (no trailing slash)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def search_url(self) -> str:
        """The call session list endpoint."""
        return self.url + SEARCH_PATH

    @property
    def login_url(self) -> str:
        """The IAM login endpoint."""
        return self.url + LOGIN_PATH

    @property
    def refresh_url(self) -> str:
        """The IAM refresh endpoint."""
        return self.url + REFRESH_PATH

    # -- ground truth and control (see SimState) -----------------------------------------

    @property
    def token(self) -> str:
        """A token that is always accepted."""
        return self.state.token

    def mint_token(self, ttl: int | None = None) -> str:
        """A JWT valid ``ttl`` seconds from the simulator's clock."""
        return self.state.mint_token(ttl)

    @property
    def stats(self) -> SimStats:
        """Counters of the requests received."""
        return self.state.stats

    @property
    def dataset(self) -> Dataset:
        """The records served."""
        return self.state.dataset

    @property
    def faults(self) -> FaultConfig:
        """The faults in force; assign a new ``FaultConfig`` to change them."""
        return self.state.faults

    @faults.setter
    def faults(self, faults: FaultConfig) -> None:
        self.state.faults = faults

    def set_faults(self, faults: FaultConfig | None = None, **fields: Any) -> FaultConfig:
        """Replace the faults (``faults``, or ``FaultConfig(**fields)``); no arguments: none.

        Safe while a pull runs; it resets every token's rate-limit bucket to full (see
        :meth:`SimState.set_faults`).
        """
        return self.state.set_faults(faults, **fields)

    def update_faults(self, **changes: Any) -> FaultConfig:
        """Change some of the faults in force by name, keeping the others (e.g.
        ``update_faults(rate_limit=5.0)``); resets the rate-limit buckets like ``set_faults``."""
        return self.state.update_faults(**changes)

    @property
    def latency(self) -> float:
        """Fixed delay (seconds) before each search/export answer."""
        return self.state.latency

    @latency.setter
    def latency(self, value: float) -> None:
        self.state.latency = value

    @property
    def jitter(self) -> float:
        """Random extra delay, uniform in ``[0, jitter)`` seconds."""
        return self.state.jitter

    @jitter.setter
    def jitter(self, value: float) -> None:
        self.state.jitter = value

    def matching_ids(self, params: Mapping[str, str] | None = None) -> list[str]:
        """Ids matching these wire parameters now, in sort order (paging ignored); the
        ground truth, including the true ids of records served without one."""
        return self.state.matching_ids(params)

    def matching_count(self, params: Mapping[str, str] | None = None) -> int:
        """How many records match these wire parameters now (the true count)."""
        return self.state.matching_count(params)

    def reported_count(self, params: Mapping[str, str] | None = None) -> int:
        """The ``count`` the list endpoint reports now (``count_cap``/``count_extra`` applied)."""
        return self.state.reported_count(params)

    def ids_served_without_id(self, params: Mapping[str, str] | None = None) -> list[str]:
        """True ids of the matching records that arrive without one (``missing_id_every``)."""
        return self.state.ids_served_without_id(params)

    def records(
        self, params: Mapping[str, str] | None = None, *, served: bool = False
    ) -> list[dict[str, Any]]:
        """The matching records themselves (``fields`` honoured), in sort order; true ones,
        or with ``served=True`` as the endpoint sends them (ids withheld by the faults)."""
        return self.state.records(params, served=served)

    def insert(self, n: int = 1, **kwargs: Any) -> list[str]:
        """Insert ``n`` records now (see ``Dataset.insert``); return their ids."""
        return self.state.insert(n, **kwargs)


async def serve(config: SimConfig, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve until cancelled (Ctrl-C), printing the URL, the credentials and a token."""
    async with SimServer(config, host=host, port=port) as sim:
        print(f"callsessions simulator: {sim.dataset.count} records, seed {config.seed}")
        print(f"  service root: {sim.url}")
        print(f"  endpoint:     {sim.search_url}")
        print(f"  login:        {sim.login_url}  ({config.email} / {config.password})")
        print(f"  token:        {sim.token}")
        print("Press Ctrl-C to stop.", flush=True)
        await asyncio.Event().wait()
