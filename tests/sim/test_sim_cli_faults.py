"""The simulator's new fault options on the command line, and a help text that shows defaults."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys

import pytest

from callsessions.sim import FaultConfig, SimConfig, add_arguments, config_from_args

UNITS = (
    "probability per request, 0..1",
    "seconds",
    "milliseconds",
    "requests/s",
    "requests",
    "records",
    "HTTP status",
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="callsessions sim",
        formatter_class=lambda prog: argparse.HelpFormatter(prog, width=1000),
    )
    add_arguments(p)
    return p


def parse(*argv: str) -> SimConfig:
    return config_from_args(parser().parse_args(argv))


def fault_help_lines(text: str) -> dict[str, str]:
    """Option -> help, for the options of the "faults" group of a help text (lines unwrapped)."""
    section = text.split("\nfaults:\n", 1)[1]
    out: dict[str, str] = {}
    option = None
    for line in section.splitlines():
        match = re.match(r"  (--[a-z0-9-]+)(?: \S+)?(?:\s{2,}(.*))?$", line)
        if match:
            option = match[1]
            out[option] = match[2] or ""
        elif option is not None and line.startswith("   "):
            out[option] = f"{out[option]} {line.strip()}".strip()
    return out


def test_new_fault_options() -> None:
    f = parse(
        "--count-cap",
        "500",
        "--count-extra",
        "3",
        "--missing-id-every",
        "9",
        "--missing-id-null",
        "--rate-html-200",
        "0.1",
        "--fail-first",
        "2",
        "--fail-first-status",
        "429",
    ).faults
    assert (f.count_cap, f.count_extra) == (500, 3)
    assert (f.missing_id_every, f.missing_id_null) == (9, True)
    assert f.rate_html_200 == 0.1
    assert (f.fail_first, f.fail_first_status) == (2, 429)


def test_new_options_are_off_by_default() -> None:
    f = parse().faults
    assert f == FaultConfig()
    assert (f.count_cap, f.count_extra, f.missing_id_every) == (None, 0, 0)
    assert (f.missing_id_null, f.rate_html_200) == (False, 0.0)


def test_html_rate_counts_in_the_sum_check() -> None:
    with pytest.raises(ValueError, match="add up"):
        parse("--rate-html-200", "0.6", "--rate-503", "0.6")


def test_every_fault_option_shows_its_default_and_unit() -> None:
    lines = fault_help_lines(parser().format_help())
    assert len(lines) == 24
    for option, text in lines.items():
        match = re.search(r"\(default: ([^,)]+)(?:, ([^)]+))?\)$", text)
        assert match, f"{option}: no default in {text!r}"
        flag = option in ("--shuffle-ties", "--missing-id-null")
        assert flag or match[2] in UNITS, f"{option}: no unit in {text!r}"
    assert lines["--rate-html-200"].endswith("(default: 0.0, probability per request, 0..1)")
    assert lines["--retry-after"].endswith("(default: 1, seconds)")
    assert lines["--stall-seconds"].endswith("(default: 30.0, seconds)")
    assert lines["--rate-limit"].endswith("(default: off, requests/s)")
    assert lines["--rate-limit-burst"].endswith("(default: 1, requests)")
    assert lines["--count-cap"].endswith("(default: off, records)")
    assert lines["--missing-id-every"].endswith("(default: 0 = off, records)")
    assert lines["--latency-ms"].endswith("(default: 0.0, milliseconds)")


def test_module_help_shows_defaults() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "callsessions.sim", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "1000"},
    )
    lines = fault_help_lines(result.stdout)
    assert lines["--rate-500"].endswith("(default: 0.0, probability per request, 0..1)")
    assert lines["--count-extra"].endswith("(default: 0, records)")
    assert "--missing-id-null" in lines
