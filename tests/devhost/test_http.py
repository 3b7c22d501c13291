"""HTTP triggers over real HTTP: routing, request fields, response shapes, errors."""

from __future__ import annotations

import base64
import logging
import uuid


async def fetch(session, method: str, path: str, **kwargs) -> tuple[int, dict, bytes]:
    async with session.request(method, path, **kwargs) as response:
        return response.status, dict(response.headers), await response.read()


def test_plain_get_with_query_and_str_return(serve) -> None:
    async def scenario(host, session):
        return [await fetch(session, "GET", "/api/hello?name=Ada"),
                await fetch(session, "GET", "/API/Hello")]

    (status, headers, body), (status2, _, body2) = serve("http_app", scenario)
    assert (status, body) == (200, b"Hello, Ada")
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert (status2, body2) == (200, b"Hello, world")  # prefix and literals are case-insensitive


def test_unknown_route_and_wrong_method_are_404_with_a_reason(serve) -> None:
    async def scenario(host, session):
        return [await fetch(session, "GET", "/api/nowhere"),
                await fetch(session, "POST", "/api/hello"),
                await fetch(session, "GET", "/elsewhere")]

    unknown, wrong_method, outside = serve("http_app", scenario)
    assert unknown[0] == 404 and b"no function route matches /api/nowhere" in unknown[2]
    assert wrong_method[0] == 404 and b"no function accepts POST at /api/hello" in wrong_method[2]
    assert outside[0] == 404 and b"outside the route prefix" in outside[2]


def test_catch_all_route_passes_method_query_headers_and_binary_body(serve) -> None:
    payload = bytes(range(256))

    async def scenario(host, session):
        async with session.put("/api/echo/a/b%20c/d?x=1&x=2&y=", data=payload,
                               headers={"X-Test": "t1"}) as response:
            return response.status, await response.json()

    status, echoed = serve("http_app", scenario)
    assert status == 200
    assert echoed["method"] == "PUT"
    assert echoed["route_params"] == {"path": "a/b c/d"}
    assert echoed["params"] == {"x": "1,2", "y": ""}
    assert echoed["x_test"] == "t1"
    assert base64.b64decode(echoed["body"]) == payload
    assert echoed["url"].endswith("/api/echo/a/b%20c/d?x=1&x=2&y=")


def test_constraints_pick_the_route_and_literals_win(serve) -> None:
    async def scenario(host, session):
        results = {}
        for path in ("items/42", "items/abc", "items/new", "items/4x2", "items/99999999999"):
            status, _, body = await fetch(session, "GET", f"/api/{path}")
            results[path] = (status, body)
        return results

    results = serve("http_app", scenario)
    assert results["items/42"] == (200, b'{"by": "id", "id": "42"}')
    assert results["items/abc"] == (200, b'{"by": "name", "name": "abc"}')
    assert results["items/new"] == (200, b'{"by": "literal"}')
    assert results["items/4x2"][0] == 404
    assert results["items/99999999999"][0] == 404  # beyond int32


def test_guid_bool_double_constraints(serve) -> None:
    good = f"/api/typed/{uuid.uuid4()}/TRUE/-1.5e3"

    async def scenario(host, session):
        return [await fetch(session, "GET", good),
                await fetch(session, "GET", "/api/typed/not-a-guid/true/1"),
                await fetch(session, "GET", f"/api/typed/{uuid.uuid4()}/yes/1"),
                await fetch(session, "GET", f"/api/typed/{uuid.uuid4()}/false/1.2.3")]

    ok, bad_guid, bad_bool, bad_double = serve("http_app", scenario)
    assert ok[0] == 200 and b'"b": "TRUE", "d": "-1.5e3"' in ok[2]
    assert [bad_guid[0], bad_bool[0], bad_double[0]] == [404, 404, 404]


def test_optional_parameter(serve) -> None:
    async def scenario(host, session):
        return [await fetch(session, "GET", "/api/opt"), await fetch(session, "GET", "/api/opt/7"),
                await fetch(session, "GET", "/api/opt/7/8")]

    absent, present, too_long = serve("http_app", scenario)
    assert (absent[0], absent[2]) == (200, b"{}")
    assert (present[0], present[2]) == (200, b'{"id": "7"}')
    assert too_long[0] == 404


def test_http_response_fields_bytes_none_and_out_binding(serve) -> None:
    async def scenario(host, session):
        return {path: await fetch(session, "GET", f"/api/{path}")
                for path in ("custom", "bytes", "nothing", "out", "slow-async")}

    got = serve("http_app", scenario)
    status, headers, body = got["custom"]
    assert (status, headers["X-Custom"], body.decode()) == (201, "yes", "créé")
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert got["bytes"][0] == 200 and got["bytes"][2] == b"\x00\x01binary"
    assert got["bytes"][1]["Content-Type"] == "application/octet-stream"
    assert (got["nothing"][0], got["nothing"][2]) == (204, b"")
    assert (got["out"][0], got["out"][2]) == (202, b"from Out")
    assert got["slow-async"][2] == b"async done"


def test_exception_is_500_without_traceback_in_body_but_in_log(serve, caplog) -> None:
    caplog.set_level(logging.INFO)

    async def scenario(host, session):
        return [await fetch(session, "GET", "/api/boom"),
                await fetch(session, "GET", "/api/wrong-type")]

    boom, wrong_type = serve("http_app", scenario)
    assert boom[0] == 500
    assert b"secret-detail-123" not in boom[2] and b"Traceback" not in boom[2]
    assert b"boom" in boom[2]
    assert "secret-detail-123" in caplog.text and "Traceback" in caplog.text
    assert "boom (httpTrigger)" in caplog.text and "Failed" in caplog.text
    assert wrong_type[0] == 500
    assert "wrong_type returned dict" in caplog.text


def test_context_parameter_and_one_log_line_per_invocation(serve, caplog, apps) -> None:
    caplog.set_level(logging.INFO, logger="devhost.invocations")

    async def scenario(host, session):
        first = await (await session.get("/api/ctx")).json()
        second = await (await session.get("/api/ctx")).json()
        return first, second

    first, second = serve("http_app", scenario)
    assert first["function_name"] == "with_context"
    assert first["directory"] == str(apps / "http_app")
    assert first["invocation_id"] != second["invocation_id"]
    lines = [r.getMessage() for r in caplog.records if r.name == "devhost.invocations"]
    assert len(lines) == 2 and all(line.startswith("with_context (httpTrigger)") for line in lines)


def test_startup_logs_each_function_with_url_and_the_listening_line(serve, caplog) -> None:
    caplog.set_level(logging.INFO, logger="devhost")

    async def scenario(host, session):
        return host.base_url, [f.name for f in host.functions], host.engine

    base_url, names, engine = serve("http_app", scenario)
    assert engine is None  # no durable functions, no engine
    assert f"hello: [GET] {base_url}/api/hello" in caplog.text
    assert f"echo: [POST,PUT] {base_url}/api/echo/{{*path}}" in caplog.text
    assert f"devhost listening on {base_url}" in caplog.text
    assert {"hello", "echo", "out_binding", "with_context"} <= set(names)


def test_blueprint_functions_under_custom_route_prefix(serve) -> None:
    async def scenario(host, session):
        return [await fetch(session, "GET", "/v1/catalog/abc12"),
                await fetch(session, "GET", "/v1/catalog/ab"),
                await fetch(session, "GET", "/v1/ping"),
                await fetch(session, "GET", "/api/ping")]

    item, too_short, ping, old_prefix = serve("blueprint_app", scenario)
    assert (item[0], item[2]) == (200, b"item abc12")
    assert too_short[0] == 404
    assert (ping[0], ping[2]) == (200, b"pong")
    assert old_prefix[0] == 404


def test_host_status(serve) -> None:
    async def scenario(host, session):
        async with session.get("/admin/host/status") as response:
            return response.status, await response.json()

    assert serve("http_app", scenario) == (200, {"state": "Running", "host": "devhost"})
