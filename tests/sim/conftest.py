"""Fixtures for the simulator's own tests: a small server, a client session, a fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import orjson
import pytest
from multidict import CIMultiDictProxy

from callsessions.sim import SimConfig, SimServer

SEARCH = "/api/v1/search/cis/calls"
START = 1_767_225_600.0  # 2026-01-01T00:00:00+00:00, the default SimConfig.start


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def config(clock: FakeClock) -> SimConfig:
    return SimConfig(records=3000, seed=7, clock=clock)


@pytest.fixture
async def sim(config: SimConfig) -> AsyncIterator[SimServer]:
    async with SimServer(config) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


Reply = tuple[int, Any, "CIMultiDictProxy[str]"]


class Searcher:
    """GETs the search endpoint of one simulator; returns status, decoded body, headers."""

    def __init__(self, http: aiohttp.ClientSession, sim: SimServer) -> None:
        self.http = http
        self.sim = sim

    async def __call__(
        self, params: Mapping[str, str] | None = None, *, token: str | None = None
    ) -> Reply:
        headers = {"Authorization": f"Bearer {token or self.sim.token}"}
        url = self.sim.url + SEARCH
        async with self.http.get(url, params=params or {}, headers=headers) as resp:
            body = await resp.read()
            decoded = orjson.loads(body) if resp.content_type == "application/json" else body
            return resp.status, decoded, resp.headers


@pytest.fixture
def search(http: aiohttp.ClientSession, sim: SimServer) -> Searcher:
    return Searcher(http, sim)
