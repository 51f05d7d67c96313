"""The pytest plugin (``callsessions.testing``) in a user's own project, and its factory.

Most tests build a fresh project with ``pytester`` whose ``pyproject.toml`` has no asyncio
settings (so pytest-asyncio runs in its default strict mode, unlike this repository's auto
mode) and run pytest on it in a subprocess, where the plugin is found only through its
installed ``pytest11`` entry point, as in a user's virtual environment.
"""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from callsessions import CallSessionsClient, RetryPolicy, ServerError, SessionQuery
from callsessions.sim import FaultConfig, SimConfig
from callsessions.testing import SimFactory, SimHandle

pytest_plugins = ["pytester"]

README = Path(__file__).resolve().parents[1] / "README.md"

#: a user's project: warnings are errors (a leaked loop, socket or thread would fail it), except
#: pytest-asyncio's own notice that ``asyncio_default_fixture_loop_scope`` is unset
PYPROJECT = """\
[project]
name = "user-project"
version = "0"

[tool.pytest.ini_options]
addopts = "-p no:cacheprovider"
filterwarnings = [
    "error",
    "ignore:The configuration option:pytest.PytestDeprecationWarning",
]
"""


def readme_example() -> str:
    """The first Python block of the README's section on testing against the simulator."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Testing your code against the simulator", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None, "the README section has no python example"
    return match.group(1)


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A fresh user project with its own ``pyproject.toml`` and no asyncio settings."""
    pytester.makefile(".toml", pyproject=PYPROJECT)
    return pytester


def run(project: pytest.Pytester, *args: str) -> pytest.RunResult:
    return project.runpytest_subprocess("-q", *args, timeout=120)


# -- in a user's project (subprocess) ----------------------------------------------------------


def test_readme_example_passes_in_strict_mode(project: pytest.Pytester) -> None:
    example = readme_example()
    assert "callsessions_sim" in example and "@pytest.mark.asyncio" in example
    project.makepyfile(test_readme=example)
    result = run(project, "-v")
    result.stdout.fnmatch_lines(["*asyncio: mode=*STRICT*"])
    result.assert_outcomes(passed=2)


def test_readme_example_passes_in_auto_mode(project: pytest.Pytester) -> None:
    unmarked = readme_example().replace("@pytest.mark.asyncio", "")
    project.makepyfile(test_readme=unmarked)
    result = run(project, "-v", "-o", "asyncio_mode=auto")
    result.stdout.fnmatch_lines(["*asyncio: mode=*AUTO*"])
    result.assert_outcomes(passed=2)


SYNC_TESTS = """
import json
import urllib.error
import urllib.request

import pytest
from callsessions.sim import FaultConfig


def get(sim, query, token=None):
    headers = {} if token is None else {"Authorization": "Bearer " + token}
    request = urllib.request.Request(sim.search_url + query, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.load(response)


def test_plain_http(callsessions_sim):
    assert callsessions_sim.url.startswith("http://127.0.0.1:")
    status, body = get(callsessions_sim, "?fields=id,status&limit=5", callsessions_sim.token)
    assert status == 200
    assert body["count"] == 2000 == callsessions_sim.matching_count()
    assert [r["id"] for r in body["items"]] == callsessions_sim.matching_ids()[:5]
    assert callsessions_sim.stats.search_requests == 1


def test_no_token_is_refused(callsessions_sim):
    with pytest.raises(urllib.error.HTTPError) as caught:
        get(callsessions_sim, "?fields=id&limit=1")
    caught.value.close()
    assert caught.value.code == 401


def test_faults_changed_from_the_test_thread(callsessions_sim):
    callsessions_sim.set_faults(FaultConfig(fail_first=2))
    assert callsessions_sim.faults.fail_first == 2
    for _ in range(2):
        with pytest.raises(urllib.error.HTTPError) as caught:
            get(callsessions_sim, "?fields=id&limit=1", callsessions_sim.token)
        caught.value.close()
        assert caught.value.code == 503
    assert get(callsessions_sim, "?fields=id&limit=1", callsessions_sim.token)[0] == 200
    assert callsessions_sim.stats.faults["fail_first"] == 2
    callsessions_sim.reset_stats()
    assert callsessions_sim.stats.total == 0
"""


def test_sync_tests_use_the_fixture_over_urllib(project: pytest.Pytester) -> None:
    project.makepyfile(test_sync=SYNC_TESTS)
    result = run(project)
    result.assert_outcomes(passed=3)


FACTORY_TESTS = """
import pytest
from callsessions import CallSessionsClient, RetryPolicy, ServerError, SessionQuery
from callsessions.sim import FaultConfig, SimConfig


async def pull(sim):
    retry = RetryPolicy.no_wait(attempts=20)
    async with CallSessionsClient(sim.url, token=sim.token, retry=retry, page_size=100) as c:
        return [s.id async for s in c.sessions(SessionQuery())]


@pytest.mark.asyncio
async def test_two_simulators_one_flaky(callsessions_sim_factory):
    flaky = callsessions_sim_factory(
        SimConfig(records=1_500, seed=1, faults=FaultConfig(rate_503=0.3))
    )
    calm = callsessions_sim_factory(SimConfig(records=700, seed=2))
    assert flaky.url != calm.url
    ids = await pull(flaky)
    assert len(ids) == len(set(ids)) == 1_500
    assert sorted(ids) == sorted(flaky.matching_ids())
    assert flaky.stats.statuses[503] > 0
    assert sorted(await pull(calm)) == sorted(calm.matching_ids())
    assert calm.stats.statuses[503] == 0


@pytest.mark.asyncio
async def test_faults_switched_on_mid_test(callsessions_sim):
    callsessions_sim.update_faults(fail_first=3)
    ids = await pull(callsessions_sim)
    assert sorted(ids) == sorted(callsessions_sim.matching_ids())
    assert callsessions_sim.stats.faults["fail_first"] == 3
"""


def test_factory_with_faults_still_delivers_every_id(project: pytest.Pytester) -> None:
    project.makepyfile(test_factory=FACTORY_TESTS)
    result = run(project)
    result.assert_outcomes(passed=2)


WITHOUT_PYTEST_ASYNCIO = """
import asyncio
from callsessions import CallSessionsClient, SessionQuery


def test_asyncio_run_inside_a_sync_test(callsessions_sim):
    async def pull():
        async with CallSessionsClient(callsessions_sim.url, token=callsessions_sim.token) as c:
            return [s.id async for s in c.sessions(SessionQuery())]

    assert sorted(asyncio.run(pull())) == sorted(callsessions_sim.matching_ids())
"""


def test_works_with_pytest_asyncio_disabled(project: pytest.Pytester) -> None:
    project.makepyfile(test_plain=WITHOUT_PYTEST_ASYNCIO)
    result = run(project, "-p", "no:asyncio")
    result.assert_outcomes(passed=1)
    assert "asyncio: mode" not in result.stdout.str()


def test_default_config_is_overridden_in_conftest(project: pytest.Pytester) -> None:
    project.makeconftest(
        """
        import pytest
        from callsessions.sim import SimConfig

        @pytest.fixture
        def callsessions_sim_config():
            return SimConfig(records=300, seed=5)
        """
    )
    project.makepyfile(
        test_small="""
        def test_small(callsessions_sim):
            assert callsessions_sim.matching_count() == 300
            assert callsessions_sim.config.seed == 5
        """
    )
    run(project).assert_outcomes(passed=1)


def test_importing_the_plugin_is_cheap_and_needs_no_pytest_asyncio() -> None:
    code = (
        "import sys; sys.modules['pytest_asyncio'] = None\n"  # makes `import pytest_asyncio` fail
        "import callsessions.testing\n"
        "print('callsessions.sim' in sys.modules, 'aiohttp.web' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["False", "False"]


# -- the factory itself (in process) -----------------------------------------------------------


def sim_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "callsessions-sim-loop"]


def refuses(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_factory_close_stops_servers_loop_and_thread() -> None:
    before = len(sim_threads())
    with SimFactory() as start:
        one = start(SimConfig(records=50, seed=1))
        two = start(SimConfig(records=60, seed=2))
        ports = [int(h.url.rsplit(":", 1)[1]) for h in (one, two)]
        assert not any(refuses(port) for port in ports)
        assert len(sim_threads()) == before + 1  # one loop thread serves both
        assert (one.matching_count(), two.matching_count()) == (50, 60)
    assert all(refuses(port) for port in ports)
    assert len(sim_threads()) == before
    with pytest.raises(RuntimeError, match="stopped"):
        one.matching_ids()
    start.close()  # a second close is harmless


def test_handle_from_an_async_test_on_another_loop(callsessions_sim: SimHandle) -> None:
    """The handle's blocking calls are safe from inside a running loop (it is not theirs)."""

    async def pull() -> list[str]:
        url, token = callsessions_sim.url, callsessions_sim.token
        callsessions_sim.set_faults(rate_500=1.0)
        async with CallSessionsClient(url, token=token, retry=RetryPolicy.never()) as client:
            with pytest.raises(ServerError):
                await client.count(SessionQuery())
        callsessions_sim.set_faults()
        assert callsessions_sim.faults == FaultConfig()
        async with CallSessionsClient(url, token=token) as client:
            return [s.id async for s in client.sessions(SessionQuery())]

    assert sorted(asyncio.run(pull())) == sorted(callsessions_sim.matching_ids())


def test_repr_and_stats_snapshot(callsessions_sim: SimHandle) -> None:
    assert callsessions_sim.token not in repr(callsessions_sim)
    snapshot = callsessions_sim.stats
    request = urllib.request.Request(
        callsessions_sim.search_url + "?fields=id&limit=1",
        headers={"Authorization": "Bearer " + callsessions_sim.token},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    assert snapshot.search_requests == 0  # a snapshot does not move
    assert callsessions_sim.stats.search_requests == 1
    assert callsessions_sim.insert(2)[0] in callsessions_sim.matching_ids()
    assert callsessions_sim.matching_count() == 2_002


def test_handle_call_runs_on_the_server_thread(callsessions_sim: SimHandle) -> None:
    name = callsessions_sim.call(lambda server: threading.current_thread().name)
    assert name == "callsessions-sim-loop"
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(callsessions_sim.search_url, timeout=10)  # no token
    caught.value.close()
    assert caught.value.code == 401
