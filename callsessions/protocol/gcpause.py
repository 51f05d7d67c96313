"""Pausing the cyclic garbage collector around bulk object creation.

A page is ~10,000 new containers (a dict per record, the lists and dicts inside, then a
record object each). Created with the collector on, they trigger a dozen young-generation
passes per page, and the pages still waiting in a pull's queue are traversed again and again
as they age: measured at about 40 % of the CPU of a raw pull. Parsed JSON and the records
built from it hold no reference cycles, so nothing is lost by letting the collector run once
afterwards instead. The previous state is restored, also on errors.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["gc_paused"]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Run the block with the cyclic collector off (if it was on)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
