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
* 502/503 faults answer an HTML page, as the gateway in front of a real service does.
"""

from ._app import RequestRecord, SimState, SimStats, make_app
from ._cli import add_arguments, config_from_args, main
from ._config import FaultConfig, SimConfig
from ._data import FIELDS, SORT_FIELDS, STATUSES, Dataset
from ._query import ParamError
from ._server import SimServer, serve

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
