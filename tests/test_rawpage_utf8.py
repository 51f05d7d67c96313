"""The UTF-8 check of ``parse_raw_page(check_utf8=True)`` against ``bytes.decode``.

The check decodes a body in pieces cut before a ``"`` (and not at all when the body is
ASCII); it must refuse exactly the bodies ``bytes.decode("utf-8")`` refuses, naming the same
first bad byte, wherever the pieces are cut.
"""

from __future__ import annotations

import re

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callsessions import DecodeError
from callsessions.protocol.rawpage import _check_utf8, parse_raw_page
from callsessions.sim import Dataset

# Pieces a body is made of: text (any code point, so 1-4 byte sequences), the byte the check
# cuts before, ASCII, and every kind of broken sequence: lone continuation bytes, leads
# without their continuations, overlong forms, surrogates, code points past U+10FFFF and
# bytes that never occur in UTF-8.
BROKEN = [
    b"\x80", b"\xbf", b"\xc2", b"\xe2\x82", b"\xf0\x9f\x98", b"\xc0\xaf", b"\xc1\xbf",
    b"\xe0\x80\xaf", b"\xe0\x9f\xbf", b"\xf0\x8f\xbf\xbf", b"\xed\xa0\x80", b"\xed\xbf\xbf",
    b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xf8", b"\xfe", b"\xff",
]
_pieces = st.one_of(
    st.text(max_size=6).map(str.encode),
    st.just(b'"'),
    st.sampled_from([b"a", b"{", b"\\", b" ", b"\x00", b"\x7f"]),
    st.sampled_from(BROKEN),
)
_bodies = st.lists(_pieces, max_size=24).map(b"".join)


def first_bad_byte(body: bytes) -> int | None:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start
    return None


def checked_bad_byte(body: bytes, chunk: int) -> int | None:
    """The byte ``_check_utf8`` names (None: accepted), its message checked."""
    if first_bad_byte(body) is None:
        _check_utf8(body, "GET", "/p", chunk)  # must not raise
        return None
    with pytest.raises(DecodeError) as info:
        _check_utf8(body, "GET", "/p", chunk)
    message = str(info.value)
    assert message.startswith(f"GET /p: malformed JSON body ({len(body)} bytes): ")
    found = re.search(r"not valid UTF-8 at byte (\d+)$", message)
    assert found is not None, message
    return int(found.group(1))


@settings(max_examples=600, deadline=None)
@given(body=_bodies, chunk=st.integers(1, 40))
def test_refuses_what_decode_refuses_at_the_same_byte(body: bytes, chunk: int) -> None:
    assert checked_bad_byte(body, chunk) == first_bad_byte(body)


@pytest.mark.parametrize("bad", BROKEN)
@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 32_768])
def test_every_broken_sequence_next_to_every_cut(bad: bytes, chunk: int) -> None:
    """A broken sequence just before, across and after the place a piece is cut."""
    for before in range(0, 6):
        body = "ж".encode() * before + bad + b'"' + "ж😀".encode() + bad + b'"x'
        assert first_bad_byte(body) is not None
        assert checked_bad_byte(body, chunk) == first_bad_byte(body)
        cut_after = b'"' * before + bad
        assert checked_bad_byte(cut_after, chunk) == first_bad_byte(cut_after)


def test_valid_bodies_pass_whole_or_in_pieces() -> None:
    for body in (b"", b"plain ascii \x00\x7f", "ж\"😀\"é".encode() * 1000, b'"' * 50):
        for chunk in (1, 5, 32_768):
            _check_utf8(body, "GET", "/p", chunk)  # no error


@pytest.fixture(scope="module")
def big_page() -> bytes:
    """A simulator page of full records (Cyrillic text in them), several pieces long."""
    dataset = Dataset(300, seed=3)
    return orjson.dumps({"count": 300, "items": [dataset.record(r) for r in range(300)]})


def test_a_bad_byte_past_the_first_piece_is_named_by_its_place_in_the_body(
    big_page: bytes,
) -> None:
    assert len(big_page) > 3 * 32_768 and not big_page.isascii()
    parse_raw_page(big_page, check_utf8=True)  # the page itself is valid
    # Replace a byte of a value (never a delimiter) far into the body by a lone continuation.
    at = big_page.index(b'"phone":"', 3 * 32_768) + len(b'"phone":"')
    broken = big_page[:at] + b"\x9d" + big_page[at + 1 :]
    assert parse_raw_page(broken).ids  # the fast path alone does not see it
    with pytest.raises(DecodeError, match=rf"not valid UTF-8 at byte {at}$") as info:
        parse_raw_page(broken, check_utf8=True, method="GET", path="/calls")
    assert str(info.value).startswith(f"GET /calls: malformed JSON body ({len(broken)} bytes)")


def test_a_multibyte_character_cut_short_past_the_first_piece(big_page: bytes) -> None:
    """A lead byte left without its continuation, wherever the pieces are cut."""
    at = big_page.index("Р".encode(), 40_000)  # a Cyrillic letter (2 bytes) past 32 KiB
    broken = big_page[:at + 1] + big_page[at + 2 :]  # its continuation byte dropped
    assert first_bad_byte(broken) == at
    for chunk in (1, 1000, 32_768, 10**9):
        assert checked_bad_byte(broken, chunk) == at
