"""Progress display of the command line: a tqdm bar on a terminal, nothing elsewhere."""

from __future__ import annotations

import sys
from typing import Any, TextIO

__all__ = ["Progress", "wants_progress"]


def wants_progress(quiet: bool, stream: TextIO | None = None) -> bool:
    """A bar only for a person watching: not with ``--quiet``, not into a pipe or a file."""
    stream = stream if stream is not None else sys.stderr
    if quiet:
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # closed stream
        return False


class Progress:
    """A progress bar to stderr, or a no-op when ``enabled`` is False.

    ``unit="rec"`` counts records against a known total; ``unit="B"`` counts bytes (scaled
    to kB, MB). ``retries`` shows up beside the rate when it is not zero.
    """

    def __init__(
        self,
        enabled: bool,
        *,
        total: int | None = None,
        initial: int = 0,
        unit: str = "rec",
        desc: str | None = None,
    ) -> None:
        self._bar: Any = None
        self._retries = 0
        self._pace: str | None = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total,
                initial=initial,
                unit=unit,
                unit_scale=True,
                unit_divisor=1024 if unit == "B" else 1000,
                desc=desc,
                file=sys.stderr,
                dynamic_ncols=True,
                smoothing=0.1,
                leave=False,
            )

    @property
    def enabled(self) -> bool:
        return self._bar is not None

    def update(self, n: int, *, retries: int | None = None, pace: str | None = None) -> None:
        """Count ``n`` more units done; ``pace`` (``throttled 4.9 req/s``) shows beside."""
        if self._bar is None:
            return
        if (retries is not None and retries != self._retries) or pace != self._pace:
            self._retries = retries if retries is not None else self._retries
            self._pace = pace
            shown = [f"{self._retries} {'retry' if self._retries == 1 else 'retries'}"]
            if pace is not None:
                shown.append(pace)
            self._bar.set_postfix_str(", ".join(shown))
        self._bar.update(n)

    def set(self, done: int, total: int | None) -> None:
        """Set the absolute amount done (a download restarted by a retry goes back)."""
        if self._bar is None:
            return
        if total is not None and self._bar.total != total:
            self._bar.total = total
        if done >= self._bar.n:
            self._bar.update(done - self._bar.n)
        else:
            self._bar.n = done
            self._bar.refresh()

    def refresh(self) -> None:
        """Redraw (the elapsed time and the rate move on while nothing arrives)."""
        if self._bar is not None:
            self._bar.refresh()

    def close(self) -> None:
        """Remove the bar (the summary line follows)."""
        if self._bar is not None:
            bar, self._bar = self._bar, None
            bar.close()
