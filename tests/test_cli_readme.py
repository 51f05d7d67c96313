"""The README's "Quick start" and "The command line" sections, run (issue 14): every command
of every ``bash`` block, in order and in one working folder, as a reader following along
would, against the simulator (and a real redis-server for the workers); every sample output
checked for its shape against what the command before it printed. A snippet that cannot run
here is listed in ``NOT_RUN`` with the reason, and the test fails when the list and the
README disagree, so a new snippet is either run or explicitly excused."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis_server import running_redis_server

from callsessions.sim import SimConfig, SimServer

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("## Quick start", "## The command line")
TOKEN = "tok-Readme-s3cret-5e1d"
PASSWORD = "pw-Readme-s3cret-0c2f"

#: text replaced in a snippet before it runs: the service, its login, the queue, a free port
SUBSTITUTIONS = {
    "https://analyse.twin24.ai": "{sim}",
    "https://iam.twin24.ai": "{sim}",
    "redis://HOST:6379/0": "{redis}",
    "--port 8080": "--port 0",
}
#: options added to a command: the demo small and without real backoff sleeps
EXTRA = {"demo": ["--records", "2000", "--retry-wait", "0"]}
#: what ``read -rs NAME`` reads (typed by the reader)
TYPED = {"CALLSESSIONS_TOKEN": TOKEN, "CALLSESSIONS_PASSWORD": PASSWORD}
#: commands that are not run, and why
NOT_RUN = {
    "python3 -m venv .venv": "creates the environment these tests run in",
    ".venv/bin/pip install -q -e .[dev]": "installs from the network",
    ".venv/bin/python -m pytest -q": "the test suite itself",
    "callsessions pull --auth-url https://iam.twin24.ai ...": "'...' stands for the options",
    "python: import duckdb, pandas as pd, polars as pl": "pandas and polars are not installed "
    "here, and the README's pull writes calls.jsonl, not calls.parquet",
}
#: commands that serve until stopped, and the line that says they are up
SERVERS = {"sim": "service root:", "worker": "callsessions worker: windows from"}


def sections() -> str:
    readme = (ROOT / "README.md").read_text("utf-8")
    found = []
    for title in SECTIONS:
        start = readme.index(title + "\n")
        end = readme.find("\n## ", start + len(title))
        found.append(readme[start : end if end >= 0 else None])
    return "\n".join(found)


def blocks(text: str) -> Iterator[tuple[str, str]]:
    """(language, body) of every fenced block, in order."""
    for match in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.MULTILINE | re.DOTALL):
        yield match.group(1), match.group(2)


def commands(body: str) -> Iterator[list[str]]:
    """The commands of a bash block: continuations joined, comments dropped, ``&&`` split,
    optional ``[--option value]`` left out."""
    for line in body.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split, lexer.commenters = True, "#"
        words: list[str] = []
        for token in [*lexer, "&&"]:
            if token != "&&":
                words.append(token)
                continue
            kept, optional = [], False
            for word in words:
                optional = optional or word.startswith("[")
                if not optional:
                    kept.append(word)
                optional = optional and not word.endswith("]")
            if kept:
                yield kept
            words = []


def shape(output: str) -> list[str]:
    """Each line's first word, numbers as N: what a sample and a real output share."""
    return [re.sub(r"\d[\d,.]*", "N", line.split()[0]) for line in output.splitlines() if line]


class Reader:
    """Runs the snippets as a reader would: one folder, one environment, servers kept."""

    def __init__(self, work: Path, sim: str, redis: str) -> None:
        self.work, self.sim, self.redis = work, sim, redis
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CALLSESSIONS_")}
        self.env["XDG_CACHE_HOME"] = str(work / "cache")
        self.servers: list[tuple[asyncio.subprocess.Process, Path]] = []
        self.skipped: set[str] = set()
        self.outputs: list[str] = []
        self.last = ""

    def substituted(self, words: list[str]) -> list[str]:
        text = shlex.join(words)
        for old, new in SUBSTITUTIONS.items():
            text = text.replace(old, new.format(sim=self.sim, redis=self.redis))
        return shlex.split(text)

    async def run(self, words: list[str]) -> None:
        text = " ".join(words)
        if text in NOT_RUN:
            self.skipped.add(text)
            return
        if words[0] == "read" and words[1] == "-rs":
            self.env[words[2]] = TYPED[words[2]]
            return
        if words[0] == "export":
            name, _, value = words[1].partition("=")
            if value:
                self.env[name] = self.substituted([value])[0]
            return
        assert words[0] in ("callsessions", ".venv/bin/callsessions"), text
        args = [*self.substituted(words[1:]), *EXTRA.get(words[1], [])]
        if words[1] in SERVERS:
            await self.start(args, SERVERS[words[1]])
            return
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "callsessions", *args, cwd=self.work, env=self.env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 300)
        self.outputs += [out.decode(), err.decode()]
        assert proc.returncode == 0, f"{text}\n{err.decode()}"
        self.last = out.decode()

    async def start(self, args: list[str], ready: str) -> None:
        log = self.work / f"server-{len(self.servers)}.log"
        with log.open("wb") as sink:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "callsessions", *args, cwd=self.work, env=self.env,
                stdout=sink, stderr=asyncio.subprocess.STDOUT,
            )
        self.servers.append((proc, log))
        for _ in range(600):
            if ready in log.read_text():
                return
            assert proc.returncode is None, log.read_text()
            await asyncio.sleep(0.05)
        raise AssertionError(f"{args[0]} did not start:\n{log.read_text()}")

    async def stop(self) -> list[int]:
        codes = []
        for proc, log in self.servers:
            if proc.returncode is None:
                proc.send_signal(signal.SIGINT)
            codes.append(await asyncio.wait_for(proc.wait(), 30))
            self.outputs.append(log.read_text())
        return codes


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    config = SimConfig(records=3_000, seed=5, static_tokens=(TOKEN,), email="me@example.com",
                       password=PASSWORD)
    async with SimServer(config) as server:
        yield server


@pytest.fixture
def redis_url() -> Iterator[str]:
    with running_redis_server() as url:
        yield url


def test_the_sections_hold_what_this_test_runs() -> None:
    bash = [words for lang, body in blocks(sections()) if lang == "bash"
            for words in commands(body)]
    programs = {w[1] for w in bash if w[0].endswith("callsessions")}
    assert programs == {"demo", "pull", "count", "export", "worker", "sim"}
    samples = [body for lang, body in blocks(sections()) if lang == ""]
    assert [shape(s)[0] for s in samples] == ["simulator:", "N"], "the demo's and count's"


async def test_the_readme_snippets_run_against_the_simulator(
    sim: SimServer, redis_url: str, tmp_path: Path
) -> None:
    reader = Reader(tmp_path, sim.url, redis_url)
    checked = 0
    try:
        for lang, body in blocks(sections()):
            if lang == "bash":
                for words in commands(body):
                    await reader.run(words)
            elif lang == "python":
                reader.skipped.add("python: " + body.splitlines()[0])
            elif lang == "":
                assert shape(body) == shape(reader.last), (body, reader.last)
                checked += 1
    finally:
        codes = await reader.stop()
    assert checked == 2
    assert reader.skipped == set(NOT_RUN)
    assert codes == [0, 0], "the worker and the simulator stop cleanly"
    assert (tmp_path / "cache" / "callsessions" / "demo.jsonl").exists()
    assert (tmp_path / "calls.jsonl").exists() and (tmp_path / "calls.csv").exists()
    assert (tmp_path / "calls" / "_manifest.json").exists()
    everything = "".join(reader.outputs)
    assert TOKEN not in everything and PASSWORD not in everything
