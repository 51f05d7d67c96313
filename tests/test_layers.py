"""The layers of DESIGN.md, checked on the source: ``protocol/`` is pure (no aiohttp, no
asyncio), and a lower folder never imports a higher one."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "callsessions"

#: each layer, and the layers of the package it may import
ALLOWED: dict[str, set[str]] = {
    "protocol": {"errors", "protocol"},
    "http": {"errors", "protocol", "http", "_files", "__about__"},
    "sinks": {"errors", "protocol", "sinks", "_files"},
    "pull": {"errors", "protocol", "http", "sinks", "pull", "_files"},
}


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, absolute (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = ["callsessions", *path.relative_to(PACKAGE).parts[:-1]]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = here[: len(here) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            found.add(module)
            if node.module is None:  # from . import x
                found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "callsessions":
        return None
    return parts[1] if len(parts) > 1 else "callsessions"


@pytest.mark.parametrize("path", sorted((PACKAGE / "protocol").glob("*.py")), ids=lambda p: p.name)
def test_protocol_imports_neither_aiohttp_nor_asyncio(path: Path) -> None:
    banned = {m for m in imports_of(path) if m.split(".")[0] in {"aiohttp", "asyncio"}}
    assert not banned, f"{path.name} imports {banned}"


@pytest.mark.parametrize(
    "path",
    sorted(p for layer in ALLOWED for p in (PACKAGE / layer).glob("*.py")),
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_a_lower_layer_never_imports_a_higher_one(path: Path) -> None:
    layer = path.parent.name
    wrong = {
        m
        for m in imports_of(path)
        if (other := layer_of(m)) is not None and other not in ALLOWED[layer]
    }
    assert not wrong, f"{layer}/{path.name} imports {sorted(wrong)}"


def test_importing_the_package_is_cheap_and_lazy() -> None:
    import subprocess
    import sys

    code = (
        "import sys, callsessions\n"
        "heavy = {'aiohttp', 'cattrs', 'tenacity', 'pyarrow', 'tqdm'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
        "assert callsessions.SessionQuery.__module__ == 'callsessions.protocol.query'\n"
        "try:\n    callsessions.NoSuchName\nexcept AttributeError as exc:\n    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "has no attribute 'NoSuchName'" in out.stdout


def test_a_jsonl_output_does_not_import_the_other_sinks(tmp_path: Path) -> None:
    """``callsessions.sinks`` is lazy too: a JSONL pull pays for no SQLite, Parquet or
    dataset module; each name still resolves, and a wrong one is an AttributeError."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import callsessions.sinks as sinks\n"
        f"sink = sinks.open_sink({str(tmp_path / 'x.jsonl')!r}, ('id',))\n"
        "assert type(sink).__name__ == 'JsonlSink'\n"
        "others = {'callsessions.sinks.' + m for m in ('sqlite', 'parquet', 'dataset')}\n"
        "assert not others & set(sys.modules), others & set(sys.modules)\n"
        "assert sinks.DatasetSink.__module__ == 'callsessions.sinks.dataset'\n"
        "assert set(sinks._WHERE) == set(sinks.__all__)\n"
        "try:\n    sinks.NoSuchSink\nexcept AttributeError as exc:\n    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "has no attribute 'NoSuchSink'" in out.stdout


def test_the_pull_help_imports_neither_attrs_nor_the_sinks() -> None:
    """``callsessions pull --help`` names the statuses, fields and output formats from
    modules that import nothing heavy (``protocol.schema``, ``sinks.suffixes``)."""
    import subprocess
    import sys

    argv = [sys.executable, "-X", "importtime", "-m", "callsessions", "pull", "--help"]
    out = subprocess.run(argv, capture_output=True, text=True)
    assert out.returncode == 0 and "parquet" in out.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines()}
    assert "callsessions.sinks.suffixes" in imported and "callsessions.protocol.schema" in imported
    heavy = {"attr", "attrs", "aiohttp", "cattrs", "callsessions.sinks.base"}
    assert not heavy & imported, heavy & imported
