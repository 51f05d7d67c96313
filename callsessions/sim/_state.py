"""One simulator's state: its data, queries, auth, faults, page cache and statistics.

:class:`SimState` is what the request handlers (``_app.py``) share and what tests drive
directly: the ground truth (``matching_ids``, ``records``...), run-time fault changes and
inserts. :class:`SimStats` counts what was received.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter, OrderedDict, deque
from collections.abc import Mapping
from typing import Any

import attrs

from ._auth import TokenIssuer
from ._config import FaultConfig, SimConfig
from ._data import Dataset
from ._faults import FaultEngine
from ._params import Query, parse_query
from ._query import QueryEngine, Result
from ._render import PageRenderer
from ._responses import select

__all__ = ["RequestRecord", "SimState", "SimStats"]


@attrs.frozen
class RequestRecord:
    """One request the simulator answered (kept in :attr:`SimStats.log`)."""

    endpoint: str
    params: Mapping[str, str]
    status: int
    fault: str | None


@attrs.define
class SimStats:
    """What the simulator received: counters by endpoint, status and fault, and a log.

    Endpoints are ``search`` (a list request), ``export`` (a ``format=`` download),
    ``login`` and ``refresh``. The log keeps the last ``log_size`` requests.
    """

    endpoints: Counter[str] = attrs.field(factory=Counter)
    statuses: Counter[int] = attrs.field(factory=Counter)
    faults: Counter[str] = attrs.field(factory=Counter)
    log: deque[RequestRecord] = attrs.field(factory=lambda: deque(maxlen=10_000))

    @property
    def search_requests(self) -> int:
        """Requests to the search endpoint, lists and exports together."""
        return self.endpoints["search"] + self.endpoints["export"]

    @property
    def total(self) -> int:
        """Every request answered."""
        return sum(self.endpoints.values())

    def record(
        self, endpoint: str, params: Mapping[str, str], status: int, fault: str | None
    ) -> None:
        """Count one answered request."""
        self.endpoints[endpoint] += 1
        self.statuses[status] += 1
        if fault is not None:
            self.faults[fault] += 1
        self.log.append(RequestRecord(endpoint, dict(params), status, fault))

    def reset(self) -> None:
        """Forget everything counted so far."""
        self.endpoints.clear()
        self.statuses.clear()
        self.faults.clear()
        self.log.clear()


class SimState:
    """One simulator's data, auth, faults and statistics (shared by its handlers)."""

    def __init__(self, config: SimConfig, dataset: Dataset | None = None) -> None:
        self.config = config
        self.dataset = dataset if dataset is not None else Dataset.from_config(config)
        self.queries = QueryEngine(self.dataset)
        self.issuer = TokenIssuer(config, config.clock)
        self.fault_engine = FaultEngine(config.faults, config.seed, config.clock)
        self.stats = SimStats()
        self.latency = config.latency
        self.jitter = config.jitter
        self._latency_rng = random.Random(f"callsessions-sim-latency-{config.seed}")
        #: encoded list bodies by (data version, query): a search index answers a repeated
        #: query from its cache too, and it keeps the simulator's own CPU from dominating
        #: client benchmarks on a small machine. Bounded; bypassed when ties are shuffled.
        self.page_cache: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
        self.page_cache_size = 64
        #: renders list bodies without a dict per record, and keeps rendered records
        self.renderer = PageRenderer(self.dataset, int(config.record_cache_mb * (1 << 20)))

    @property
    def faults(self) -> FaultConfig:
        """The faults in force."""
        return self.fault_engine.faults

    @faults.setter
    def faults(self, faults: FaultConfig) -> None:
        self.fault_engine.set(faults)

    def set_faults(self, faults: FaultConfig | None = None, **fields: Any) -> FaultConfig:
        """Replace the faults: with ``faults``, or a ``FaultConfig(**fields)``.

        ``set_faults()`` turns every fault off. Returns the faults now in force. Takes effect
        from the next request (a pull may be running): the random draws are reseeded,
        ``fail_first`` restarts, and every token's rate-limit bucket is reset to a full one of
        the new ``rate_limit_burst`` (so a changed ``rate_limit`` is enforced after one burst).
        """
        if faults is None:
            faults = FaultConfig(**fields)
        elif fields:
            faults = attrs.evolve(faults, **fields)
        self.fault_engine.set(faults)
        return faults

    def update_faults(self, **changes: Any) -> FaultConfig:
        """Change some of the faults in force by name, keeping the others.

        Like :meth:`set_faults` it reseeds the draws and resets the rate-limit buckets, e.g.
        ``update_faults(rate_limit=5.0)`` halves a limit of 10 requests/s mid-pull.
        """
        return self.set_faults(attrs.evolve(self.faults, **changes))

    @property
    def token(self) -> str:
        """A token that is always valid (the first static token), or a fresh JWT."""
        if self.config.static_tokens:
            return self.config.static_tokens[0]
        return self.mint_token()

    def mint_token(self, ttl: int | None = None) -> str:
        """A JWT for the configured user, valid ``ttl`` seconds (default ``token_ttl``)."""
        return self.issuer.mint(
            self.config.user_id,
            self.config.company_id,
            self.config.token_ttl if ttl is None else ttl,
        )

    def query(self, params: Mapping[str, str]) -> tuple[Query, Result]:
        """Parse wire parameters (ParamError on invalid input) and evaluate them, unpaged."""
        query = parse_query(params)
        return query, self.queries.evaluate(query)

    def page_body(self, params: Mapping[str, str]) -> bytes:
        """The body of a 200 list answer to these wire parameters now, under the faults in
        force (no fault drawn: not truncated, ties not shuffled); ParamError if invalid."""
        query = parse_query(params, offset_ceiling=self.config.offset_ceiling)
        return self.list_body(params, query, self.queries.evaluate(query))

    def list_body(
        self,
        params: Mapping[str, str],
        query: Query,
        result: Result,
        shuffle: random.Random | None = None,
    ) -> bytes:
        """The list body for a parsed query and its result: from the page cache, or
        rendered (``shuffle``: ties shuffled with it, never cached)."""
        faults = self.faults
        # the faults that change a 200's body are part of the key: a change is seen at once
        key = (self.dataset.version, faults.body_key(), tuple(sorted(params.items())))
        cached = self.page_cache.get(key) if shuffle is None else None
        if cached is not None:
            self.page_cache.move_to_end(key)
            return cached
        start, stop = query.offset, query.offset + query.limit
        if shuffle is not None:
            rids = result.shuffled_rids(start, stop, shuffle)
        else:
            rids = result.rids(start, stop)
        count = faults.reported_count(result.count)
        body = self.renderer.body(count, rids, query.fields, faults)
        if shuffle is None and self.page_cache_size:
            self.page_cache[key] = body
            while len(self.page_cache) > self.page_cache_size:
                self.page_cache.popitem(last=False)
        return body

    def matching_ids(self, params: Mapping[str, str] | None = None) -> list[str]:
        """Ids of every record matching these wire parameters right now, in sort order.

        The ground truth: paging, ``format``, the offset ceiling and the faults are ignored
        (records served without an id are listed with their true id); ties keep the stable
        order.
        """
        _, result = self.query(params or {})
        id_of = self.dataset.id_of
        return [id_of(rid) for rid in result.rids(0, result.count)]

    def matching_count(self, params: Mapping[str, str] | None = None) -> int:
        """How many records match these wire parameters right now (the true count)."""
        return self.query(params or {})[1].count

    def reported_count(self, params: Mapping[str, str] | None = None) -> int:
        """The ``count`` a list answer reports for these parameters now (``count_cap`` and
        ``count_extra`` applied), which may differ from :meth:`matching_count`."""
        return self.faults.reported_count(self.matching_count(params))

    def ids_served_without_id(self, params: Mapping[str, str] | None = None) -> list[str]:
        """True ids of the matching records served without one (``missing_id_every``),
        in sort order; empty when that fault is off."""
        faults = self.faults
        if not faults.missing_id_every:
            return []
        _, result = self.query(params or {})
        id_of = self.dataset.id_of
        return [id_of(rid) for rid in result.rids(0, result.count) if faults.id_missing(rid)]

    def insert(self, n: int = 1, **kwargs: Any) -> list[str]:
        """Insert ``n`` records (see :meth:`Dataset.insert`); return their ids."""
        return self.dataset.insert(n, **kwargs)

    def records(
        self, params: Mapping[str, str] | None = None, *, served: bool = False
    ) -> list[dict[str, Any]]:
        """Full records matching these wire parameters (fields honoured), in sort order.

        The true records, every one with its id; ``served=True`` gives them as the list
        endpoint sends them, without the ids that ``missing_id_every`` withholds.
        """
        query, result = self.query(params or {})
        faults = self.faults if served else None
        return select(self.dataset, result.rids(0, result.count), query.fields, faults)

    async def delay(self) -> None:
        """Sleep the configured latency plus jitter."""
        wait = self.latency
        if self.jitter:
            wait += self._latency_rng.random() * self.jitter
        if wait > 0:
            await asyncio.sleep(wait)
