"""Authentication: bearer tokens on the search endpoint, and the IAM login/refresh."""

from __future__ import annotations

import base64
from typing import Any

import aiohttp
import orjson
import pytest

from callsessions.sim import SimServer


def payload(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    result: dict[str, Any] = orjson.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return result


async def login(http: aiohttp.ClientSession, sim: SimServer, **body: Any) -> tuple[int, Any]:
    body = {"email": "demo@example.com", "password": "demo-password", "ttl": 3600, **body}
    async with http.post(sim.login_url, json=body) as resp:
        return resp.status, await resp.json()


@pytest.mark.parametrize(
    "header", [None, "", "Bearer", "Bearer ", "Basic abc", "Bearer nope", "Bearer a.b.c"]
)
async def test_missing_or_invalid_token_is_401(
    sim: SimServer, http: aiohttp.ClientSession, header: str | None
) -> None:
    headers = {} if header is None else {"Authorization": header}
    async with http.get(sim.search_url, headers=headers) as resp:
        assert resp.status == 401
        body = await resp.json()
    assert body["error"] == "User is not authenticated"
    assert "details" in body
    assert sim.stats.statuses[401] == 1


async def test_static_token(sim: SimServer, search: Any) -> None:
    assert sim.token == "sim-static-token"
    status, _, _ = await search(token="sim-static-token")
    assert status == 200


async def test_login_gives_a_working_jwt(
    sim: SimServer, http: aiohttp.ClientSession, search: Any, clock: Any
) -> None:
    status, body = await login(http, sim)
    assert status == 200
    assert set(body) == {"token", "refreshToken"}
    claims = payload(body["token"])
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["iat"] == int(clock.now)
    assert claims["sub"] == "1001"
    assert claims["company_id"] == 1
    assert (await search(token=body["token"]))[0] == 200
    assert sim.stats.endpoints["login"] == 1


async def test_login_company_and_ttl_cap(sim: SimServer, http: aiohttp.ClientSession) -> None:
    status, body = await login(http, sim, companyId=42, ttl=10**9)
    assert status == 200
    claims = payload(body["token"])
    assert claims["company_id"] == 42
    assert claims["exp"] - claims["iat"] == 30 * 86400
    _, body = await login(http, sim, ttl=None)
    claims = payload(body["token"])
    assert claims["exp"] - claims["iat"] == 7 * 86400


@pytest.mark.parametrize("body", [{"password": "wrong"}, {"email": "other@example.com"}])
async def test_wrong_credentials_are_401(
    sim: SimServer, http: aiohttp.ClientSession, body: dict[str, Any]
) -> None:
    status, answer = await login(http, sim, **body)
    assert status == 401
    assert set(answer) == {"error", "details"}


@pytest.mark.parametrize("body", [{"ttl": -1}, {"ttl": "soon"}, {"email": None}])
async def test_bad_login_input_is_400(
    sim: SimServer, http: aiohttp.ClientSession, body: dict[str, Any]
) -> None:
    status, _ = await login(http, sim, **body)
    assert status == 400


async def test_login_body_not_json_is_400(sim: SimServer, http: aiohttp.ClientSession) -> None:
    async with http.post(sim.login_url, data=b"{nope") as resp:
        assert resp.status == 400


async def test_expired_token_is_401_token_is_expired(
    sim: SimServer, http: aiohttp.ClientSession, search: Any, clock: Any
) -> None:
    _, body = await login(http, sim, ttl=60)
    token = body["token"]
    clock.advance(59)
    assert (await search(token=token))[0] == 200
    clock.advance(1)
    status, answer, _ = await search(token=token)
    assert status == 401
    assert answer["error"] == "Token is expired."


async def test_refresh_with_an_expired_token(
    sim: SimServer, http: aiohttp.ClientSession, search: Any, clock: Any
) -> None:
    _, first = await login(http, sim, ttl=60)
    clock.advance(120)
    body = {"refreshToken": first["refreshToken"], "ttl": 600}
    headers = {"Authorization": first["token"]}
    async with http.post(sim.refresh_url, json=body, headers=headers) as resp:
        assert resp.status == 200
        second = await resp.json()
    assert set(second) == {"token", "refreshToken"}
    claims = payload(second["token"])
    assert claims["exp"] == int(clock.now) + 600
    assert (await search(token=second["token"]))[0] == 200
    assert sim.stats.endpoints["refresh"] == 1


async def test_refresh_needs_a_genuine_token_and_refresh_token(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    _, first = await login(http, sim)
    cases = [
        ({"refreshToken": "forged", "ttl": 60}, {"Authorization": first["token"]}, 401),
        ({"refreshToken": first["refreshToken"]}, {"Authorization": "forged.token.x"}, 401),
        ({"refreshToken": first["refreshToken"]}, {}, 401),
        ({"ttl": 60}, {"Authorization": first["token"]}, 400),
        (
            {"refreshToken": first["refreshToken"]},
            {"Authorization": "Bearer " + first["token"]},
            200,
        ),
    ]
    for body, headers, expected in cases:
        async with http.post(sim.refresh_url, json=body, headers=headers) as resp:
            assert resp.status == expected, (body, headers)


async def test_minted_tokens_follow_the_clock(sim: SimServer, search: Any, clock: Any) -> None:
    token = sim.mint_token(ttl=10)
    assert (await search(token=token))[0] == 200
    clock.advance(10)
    assert (await search(token=token))[1]["error"] == "Token is expired."


async def test_faults_never_touch_login(sim: SimServer, http: aiohttp.ClientSession) -> None:
    sim.set_faults(rate_503=1.0, fail_first=5)
    for _ in range(3):
        assert (await login(http, sim))[0] == 200
    assert sim.stats.faults == {}
