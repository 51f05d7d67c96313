"""A faithful local simulator of the TWIN call-session list API, for tests, demos and benchmarks.

Like moto for AWS: point a client at it and test against real HTTP::

    from callsessions.sim import SimConfig, SimServer

    async with SimServer(SimConfig(records=5_000, seed=1)) as sim:
        # GET  sim.url + "/api/v1/search/cis/calls"   with  Authorization: Bearer <sim.token>
        # POST sim.url + "/api/v1/auth/login"         {"email", "password", "ttl"}
        expected = sim.matching_ids({"status": "ANSWERED"})
        ...

It implements ``API.md`` independently of the client (it imports nothing else from
``callsessions``). Choices where the documentation is silent:

* ``fields`` absent returns every field; unknown parameters are ignored.
* ``from`` is inclusive, ``to`` exclusive, both need a UTC offset; ``dateField`` picks the
  column (createdAt, updatedAt, startedAt). A null ``startedAt`` never matches a range and
  sorts last in both directions.
* The default order is ``createdAt`` ascending; ties keep a stable order unless the
  ``shuffle_ties`` fault is on.
* ``offset + limit`` above ``offset_ceiling`` is a 400 ("Result window is too large").
* ``format`` (CSV, CSV_EXCEL, XLSX, JSON) downloads *every* matching record, in sort order:
  ``limit``, ``offset`` and ``page`` are validated but do not apply, nor does the ceiling.
  A JSON download is a bare array of records.
* 502/503 faults answer an HTML page, as the gateway in front of a real service does; the
  ``rate_html_200`` fault answers 200 with an HTML login page (a captive portal, a proxy).
* Every fault (:class:`FaultConfig`) is off by default and reproducible from the seed.
  ``count_cap`` reports ``count`` as at most N (Elasticsearch's ``track_total_hits``), with
  no "at least" marker in the body; ``count_extra`` reports it N too high (a stale count
  with deleted records) while the pages hold only the real records. The offset ceiling
  applies on its own either way.
* ``missing_id_every`` serves every N-th record of the data set (rid + 1 divisible by N,
  independent of the seed) without ``id`` (or with ``"id": null``), in lists and downloads.
  The ground truth stays the truth: ``matching_ids``, ``matching_count`` and ``records``
  keep every record and its id, filters on ``id`` still match it; ``reported_count`` gives
  the ``count`` as served, ``ids_served_without_id`` the records that arrive without one,
  and ``records(served=True)`` the records as served.
* Faults may change at run time (``set_faults`` / ``update_faults``), e.g. the per-token
  ``rate_limit`` and ``rate_limit_burst`` mid-pull; every change reseeds the draws and
  resets every token's bucket to full, so the new rate is enforced after one burst.
"""

from ._app import make_app
from ._cli import add_arguments, config_from_args, main
from ._config import FaultConfig, SimConfig
from ._data import FIELDS, SORT_FIELDS, STATUSES, Dataset
from ._params import ParamError
from ._server import SimServer, serve
from ._state import RequestRecord, SimState, SimStats

__all__ = [
    "FIELDS",
    "SORT_FIELDS",
    "STATUSES",
    "Dataset",
    "FaultConfig",
    "ParamError",
    "RequestRecord",
    "SimConfig",
    "SimServer",
    "SimState",
    "SimStats",
    "add_arguments",
    "config_from_args",
    "main",
    "make_app",
    "serve",
]
