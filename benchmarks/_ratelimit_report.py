"""The report of ``benchmarks.ratelimit``: the issue's table, the table of the rates that
change mid-pull, and the verdicts on the targets."""

from __future__ import annotations

from typing import Any

from ._ratelimit_common import LEARN_S, SLOW


def fmt(value: float | None, spec: str = ".2f", none: str = "-") -> str:
    return none if value is None else format(value, spec)


def lag(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| bucket (rate, burst) | pages | client | C | exact | exit 0 | 429s / requests "
        f"| of which in the first {LEARN_S:g} s | wall s | wall / (requests ÷ rate) "
        "| final rate | targets |",
        "|" + "---|" * 12,
    ]
    for r in rows:
        spread = f" (±{r['wall_spread'] / 2:.0%}, {r['runs']} runs)" if r["runs"] > 1 else ""
        lines.append(
            f"| {r['bucket']} | {r['pages']} | {r['client']} | {r['concurrency']} "
            f"| {'yes' if r['exact'] else 'NO'} "
            f"| {'yes' if r['exit_ok'] else 'NO: ' + str(r['error']).split(':')[0]} "
            f"| {r['throttled']} / {r['requests']} ({r['share_429']:.1%}) "
            f"| {r.get('throttled_learning', '-')} "
            f"| {r['wall']:.{1 if r['rate_limit'] else 2}f}{spread} "
            f"| {fmt(r['wall_ratio'], '.3f')} "
            f"| {fmt(r['final_rate'])} | {verdict(r, rows)} |"
        )
    return "\n".join(lines)


def verdict(row: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """The issue's targets, for the client as it is. Without a bucket, "within noise of
    today": the medians of the client and the stand-in (same concurrency) differ by no
    more than the larger half-range of the two (the ± shown)."""
    if row["client"] not in ("adaptive", SLOW):
        return ""
    if row["rate_limit"] is None:
        base = [r for r in rows if r["rate_limit"] is None and r["client"] == "stand-in"
                and r["concurrency"] == row["concurrency"]]
        noise = max([row["wall_spread"] * row["wall"] / 2]
                    + [b["wall_spread"] * b["wall"] / 2 for b in base])
        fast = bool(base) and row["wall"] - base[0]["wall"] <= noise
        return "met" if row["throttled"] == 0 and row["all_exact"] and fast else "MISSED"
    ok = row["exact"] and row["exit_ok"] and row["share_429"] <= 0.05
    return "met" if ok and row["wall_ratio"] <= 1.15 else "MISSED"


def change_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| change | bucket before → after | pages before + after | exact | exit 0 "
        "| lag into ±25 %: first / for good | 429 share before / after "
        "| served after ÷ new rate | final rate |",
        "|" + "---|" * 9,
    ]
    for r in rows:
        b, a = r["before"], r["after"]
        lines.append(
            f"| {r['name']} | {b[0]:g}/s, {b[1]} → {a[0]:g}/s, {a[1]} "
            f"| {r['pages_split'][0]} + {r['pages_split'][1]} "
            f"| {'yes' if r['exact'] else 'NO'} | {'yes' if r['exit_ok'] else 'NO'} "
            f"| {lag(r['lag_enter'])} / {lag(r['lag_settled'])} (of {r['after_s']:.0f} s) "
            f"| {r.get('share_429_before', 0):.1%} / {r.get('share_429_after', 0):.1%} "
            f"| {r.get('served_rate_after', 0) / a[0]:.2f} | {fmt(r['final_rate'])} |"
        )
    return "\n".join(lines)


def label(rate: float | None, burst: int) -> str:
    return "none" if rate is None else f"{rate:g}/s, {burst}"
