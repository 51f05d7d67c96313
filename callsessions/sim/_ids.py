"""Record ids: UUID-shaped strings (version 4, variant 1) whose low 40 bits encode the rid.

``Dataset.id_of`` and the list renderer's id column (``_columns.py``) build ids from these
constants, and ``Dataset.rid_of`` inverts them, so looking up an id is O(1): the rid, XORed
with a per-seed key (``Dataset.rid_mask``), is multiplied by an odd constant modulo 2**40 and
folded once (``x ^= x >> 20``); the other bits come from the record's random hash.
"""

from __future__ import annotations

__all__ = ["M40", "M64", "SCRAMBLE_INV", "SCRAMBLE_MUL", "UUID_HI_MASK", "mix"]

M64 = (1 << 64) - 1
M40 = (1 << 40) - 1
UUID_HI_MASK = M64 ^ 0xF000  # the version nibble is cleared, then set to 4
SCRAMBLE_MUL = 0x9E3779B97  # odd, so invertible modulo 2**40
SCRAMBLE_INV = pow(SCRAMBLE_MUL, -1, 1 << 40)


def mix(x: int) -> int:
    """splitmix64 finaliser: a cheap, well-spread hash of a 64-bit integer."""
    x = (x + 0x9E3779B97F4A7C15) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)
