"""What the search endpoint sends back: records as served, error bodies and fault answers.

Kept apart from the request handlers in ``_app.py``: these are plain functions of the data,
the faults in force and a fault decision, so what a client receives is decided in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

from ._config import FaultConfig
from ._data import FIELDS, Dataset
from ._faults import Decision

__all__ = ["JSON_TYPE", "error", "fault_response", "json_response", "select"]

JSON_TYPE = "application/json"
_GATEWAY_PAGE = (
    "<html>\r\n<head><title>{code} {reason}</title></head>\r\n<body>\r\n"
    "<center><h1>{code} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)
#: What a captive portal or a proxy's sign-in page answers, with status 200, to any URL.
LOGIN_PAGE = (
    "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n"
    "<title>Sign in - Network Access</title>\n</head>\n<body>\n"
    "<h1>Sign in to continue</h1>\n"
    "<form method=\"post\" action=\"/portal/login\">\n"
    "<input name=\"username\"> <input name=\"password\" type=\"password\">\n"
    "<button type=\"submit\">Sign in</button>\n</form>\n</body>\n</html>\n"
)


def select(
    dataset: Dataset,
    rids: list[int],
    fields: tuple[str, ...],
    faults: FaultConfig | None = None,
) -> list[dict[str, Any]]:
    """The records ``rids`` with the keys ``fields``, as served under ``faults``.

    Records that ``faults.missing_id_every`` picks lose their ``id`` key (or carry
    ``"id": null`` with ``missing_id_null``). ``faults=None`` gives the true records.
    """
    record = dataset.record
    if fields == FIELDS:
        out = [record(rid) for rid in rids]
    else:
        out = [{f: rec[f] for f in fields} for rec in map(record, rids)]
    if faults is not None and faults.missing_id_every and "id" in fields:
        as_null = faults.missing_id_null
        for rid, rec in zip(rids, out, strict=True):
            if faults.id_missing(rid):
                if as_null:
                    rec["id"] = None
                else:
                    del rec["id"]
    return out


def json_response(
    status: int, body: Any, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A JSON answer encoded with orjson."""
    return web.Response(
        status=status, body=orjson.dumps(body), content_type=JSON_TYPE, headers=headers
    )


def error(status: int, message: Any, details: Any = None, **headers: str) -> web.Response:
    """An API error: ``{"error": message, "details": details}``."""
    return json_response(status, {"error": message, "details": details}, headers or None)


def fault_response(decision: Decision) -> web.Response:
    """The answer that replaces a normal one: a 429, a 500, a gateway page or a login page."""
    status = decision.status
    assert status is not None
    headers = {}
    if decision.retry_after is not None:
        headers["Retry-After"] = str(decision.retry_after)
    if status == 429:
        return error(429, "Too Many Requests", None, **headers)
    if status == 500:
        return error(500, "Internal Server Error", None)
    if status == 200:  # html_200: somebody else's page, with a success status
        return web.Response(status=200, text=LOGIN_PAGE, content_type="text/html")
    reason = {502: "Bad Gateway", 503: "Service Temporarily Unavailable"}[status]
    return web.Response(
        status=status,
        text=_GATEWAY_PAGE.format(code=status, reason=reason),
        content_type="text/html",
        headers=headers,
    )
