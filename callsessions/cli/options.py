"""From parsed options to library values, checked before any request (no I/O but looking at
the output's folder): the query, the client's configuration, the service and credentials.

``describe_invalid`` puts the library's ``InvalidQueryError`` in the words of the command
line: the option (or variable) the user set, and hints they can follow where they are.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attrs import frozen

from callsessions.cli.lines import CommandError, cli_words
from callsessions.cli.texts import ENV_BASE_URL, ENV_EMAIL, ENV_PASSWORD, ENV_TOKEN

if TYPE_CHECKING:
    from callsessions import Auth, ClientConfig, InvalidQueryError, Secret, SessionQuery

__all__ = [
    "Credentials",
    "base_url_of",
    "check_output",
    "config_from",
    "describe_invalid",
    "names_a_file",
    "query_from",
]

Environ = Mapping[str, str]

#: library parameter -> the option (or variable) a user sets it with
OPTION_OF = {
    "start": "--from",
    "end": "--to",
    "date_field": "--date-field",
    "statuses": "--status",
    "extra_statuses": "--extra-status",
    "fields": "--fields",
    "sort": "--sort",
    "keyword": "--keyword",
    "phone": "--phone",
    "task_id": "--task-id",
    "call_id": "--call-id",
    "company_id": "--company-id",
    "page_size": "--page-size",
    "concurrency": "--concurrency",
    "offset_ceiling": "--offset-ceiling",
    "timeout": "--timeout",
    "max_rate": "--max-rate",
    "endpoint_path": "--endpoint-path",
    "wire_names": "--wire-name",
    "base_url": "--base-url",
    "auth_url": "--auth-url",
    "email": ENV_EMAIL,
    "export_format": "--format",
    "filename": "--filename",
}


def _show(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return ",".join(_show(v) for v in value)
    return str(value)


def describe_invalid(exc: InvalidQueryError) -> str:
    """An ``InvalidQueryError`` in the words of the command line."""
    parameter = exc.parameter
    if parameter.startswith("wire_names["):
        parameter = "wire_names"
    option = OPTION_OF.get(parameter, parameter)
    return f"{option} {_show(exc.value)}: {cli_words(exc.problem)}"


def query_from(ns: argparse.Namespace, **extra: Any) -> SessionQuery:
    """The ``SessionQuery`` of the filter options (``extra``: more of its fields)."""
    from callsessions import SessionQuery

    for option, value in (("--status", ns.status), ("--fields", ns.fields), ("--sort", ns.sort)):
        if value is not None and not value.strip(" ,"):
            raise CommandError(f"{option} is empty: leave it out to mean all")
    extras = [s.strip() for item in ns.extra_status or () for s in item.split(",") if s.strip()]
    return SessionQuery(
        start=ns.start,
        end=ns.end,
        date_field=ns.date_field,
        statuses=ns.status,
        extra_statuses=extras,
        fields=ns.fields,
        sort=ns.sort,
        keyword=ns.keyword,
        phone=ns.phone,
        task_id=ns.task_id,
        call_id=ns.call_id,
        company_id=ns.company_id,
        **extra,
    )


def config_from(ns: argparse.Namespace) -> ClientConfig:
    """The ``ClientConfig`` of the service and pace options (unset ones keep the defaults)."""
    from callsessions import ClientConfig, RetryPolicy, WireNames

    settings: dict[str, Any] = {}
    for name in ("endpoint_path", "timeout", "page_size", "concurrency", "offset_ceiling",
                 "max_rate"):
        value = getattr(ns, name, None)
        if value is not None:
            settings[name] = value
    if getattr(ns, "count_ahead", True) is False:
        settings["count_ahead"] = False
    if getattr(ns, "slow_start", False):
        settings["initial_concurrency"] = 1
    if getattr(ns, "wire_name", None):
        settings["wire_names"] = WireNames.from_mapping(dict(ns.wire_name))
    if ns.retry_wait is not None:
        wait = ns.retry_wait
        settings["retry"] = (
            RetryPolicy.no_wait()
            if wait == 0
            else RetryPolicy(initial_wait=wait, max_wait=max(wait, 30.0))
        )
    return ClientConfig(**settings)


def base_url_of(ns: argparse.Namespace, environ: Environ) -> str:
    """The service root: ``--base-url``, else ``$CALLSESSIONS_BASE_URL``; checked now, so
    that a bad one is refused before anything else happens."""
    from callsessions import CallSessionsClient, InvalidQueryError

    given: str | None = ns.base_url
    source = "--base-url"
    if given is None:
        given, source = environ.get(ENV_BASE_URL, "").strip(), ENV_BASE_URL
        if not given:
            raise CommandError(f"no service: give --base-url URL or set {ENV_BASE_URL}")
    try:
        # The client validates it when built; one built and dropped sends nothing.
        CallSessionsClient(given, token="x")
    except InvalidQueryError as exc:
        raise CommandError(f"{source} {_show(exc.value)}: {exc.problem}") from None
    return given


@frozen
class Credentials:
    """How to authenticate, read from the environment. Its repr shows no secret."""

    token: Secret | None = None
    email: str | None = None
    password: Secret | None = None
    auth_url: str | None = None

    @classmethod
    def from_environment(cls, auth_url: str | None, environ: Environ) -> Credentials:
        """A token from ``CALLSESSIONS_TOKEN``, or with ``auth_url`` the email and password
        from ``CALLSESSIONS_EMAIL`` and ``CALLSESSIONS_PASSWORD``; CommandError if absent."""
        from callsessions import Secret

        if auth_url is not None:
            email = environ.get(ENV_EMAIL, "").strip()
            password = environ.get(ENV_PASSWORD, "")
            if not email or not password:
                raise CommandError(
                    f"--auth-url needs the environment variables {ENV_EMAIL} and {ENV_PASSWORD}"
                )
            creds = cls(email=email, password=Secret(password), auth_url=auth_url)
            creds.auth()  # validates email and URL, before any request
            return creds
        token = environ.get(ENV_TOKEN, "").strip()
        if not token:
            raise CommandError(
                f"no credentials: set the environment variable {ENV_TOKEN} to a token, or "
                f"give --auth-url with {ENV_EMAIL} and {ENV_PASSWORD} set"
            )
        return cls(token=Secret(token))

    def auth(self) -> Auth:
        from callsessions import PasswordAuth, TokenAuth

        if self.token is not None:
            return TokenAuth(self.token)
        assert self.email is not None
        assert self.password is not None
        assert self.auth_url is not None
        return PasswordAuth(self.email, self.password, auth_url=self.auth_url)


def names_a_file(out: str) -> bool:
    """Whether ``out``'s name has a file format's extension (``folder.jsonl``)."""
    from callsessions.sinks import FORMATS

    name = Path(out).name.lower()
    return any(name.endswith(ext) and len(name) > len(ext) for ext in FORMATS)


def check_output(out: Path, *, directory: bool = False) -> None:
    """The output's folder exists and can be written, before any request."""
    if out.is_dir() and not directory:
        raise CommandError(f"--out {out}: is a directory")
    folder = out if directory and out.is_dir() else out.parent
    if not folder.is_dir():
        raise CommandError(f"--out {out}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CommandError(f"--out {out}: the folder {folder} is not writable")
