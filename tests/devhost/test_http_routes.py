"""Route templates without I/O: parsing, constraints, matching and precedence."""

from __future__ import annotations

import pytest

from devhost.http_routes import RouteError, RouteTable, RouteTemplate, make_constraint


@pytest.mark.parametrize(("template", "path", "expected"), [
    ("hello", "hello", {}),
    ("hello", "HELLO/", {}),
    ("hello", "hello/x", None),
    ("", "", {}),
    ("users/{id}", "users/7", {"id": "7"}),
    ("users/{id}", "users", None),
    ("users/{id}", "users/a%2Fb", {"id": "a/b"}),
    ("users/{id?}", "users", {}),
    ("users/{id?}", "users/9", {"id": "9"}),
    ("a/{x?}/{y?}", "a/1", {"x": "1"}),
    ("files/{*path}", "files", {}),
    ("files/{*path}", "files/a/b%20c/d.txt", {"path": "a/b c/d.txt"}),
    ("files/{**path}", "files/x", {"path": "x"}),
    ("files/{name}.{ext}", "files/report.final.pdf", {"name": "report.final", "ext": "pdf"}),
    ("files/{name}.{ext}", "files/report", None),
    ("n/{v:int}", "n/-12", {"v": "-12"}),
    ("n/{v:int}", "n/2147483648", None),
    ("n/{v:long}", "n/2147483648", {"v": "2147483648"}),
    ("n/{v:int:min(10)}", "n/9", None),
    ("n/{v:int:min(10)}", "n/10", {"v": "10"}),
    ("n/{v:range(1,3)}", "n/4", None),
    ("s/{v:alpha}", "s/abcXYZ", {"v": "abcXYZ"}),
    ("s/{v:alpha}", "s/ab1", None),
    ("s/{v:alpha}", "s/é", None),
    ("s/{v:length(2)}", "s/abc", None),
    ("s/{v:length(2,3)}", "s/abc", {"v": "abc"}),
    ("s/{v:minlength(2):maxlength(3)}", "s/a", None),
    ("s/{v:regex(^\\d{{3}}$)}", "s/123", {"v": "123"}),
    ("s/{v:regex(^[a-c]+$)}", "s/ABC", {"v": "ABC"}),
    ("s/{v:regex(^[a-c]+$)}", "s/abd", None),
    ("b/{v:bool}", "b/False", {"v": "False"}),
    ("b/{v:bool}", "b/1", None),
    ("d/{v:double}", "d/.5", {"v": ".5"}),
    ("d/{v:double}", "d/1e", None),
    ("d/{v:datetime}", "d/2026-01-02T03:04:05", {"v": "2026-01-02T03:04:05"}),
    ("d/{v:datetime}", "d/yesterday", None),
])
def test_match(template: str, path: str, expected: dict | None) -> None:
    assert RouteTemplate(template).match(path) == expected


@pytest.mark.parametrize("value", [
    "0f8fad5b-d9cb-469f-a165-70867728950e", "0f8fad5bd9cb469fa16570867728950e",
    "{0f8fad5b-d9cb-469f-a165-70867728950e}", "(0F8FAD5B-D9CB-469F-A165-70867728950E)"])
def test_guid_formats_accepted(value: str) -> None:
    assert make_constraint("guid", None)(value)


@pytest.mark.parametrize("value", [
    "0f8fad5b-d9cb-469f-a165-70867728950", "0f8fad5bd-9cb-469f-a165-70867728950e",
    "{0f8fad5b-d9cb-469f-a165-70867728950e)", "zf8fad5bd9cb469fa16570867728950e"])
def test_guid_formats_refused(value: str) -> None:
    assert not make_constraint("guid", None)(value)


@pytest.mark.parametrize(("template", "message"), [
    ("a/{*rest}/b", "catch-all parameter must be last"),
    ("a/{x?}/b", "only trailing parameters can be optional"),
    ("a/{x:nope}", "unknown route constraint 'nope'"),
    ("a/{x:min(a)}", "needs 1 integer argument"),
    ("a/{x}/{X}", "appears twice"),
    ("a/{x}{y}", "need a literal between them"),
    ("a/{x=5}", "default values"),
    ("a/{x", "unbalanced braces"),
    ("a/pre{x?}", "must be a whole segment"),
    ("a/{1x}", "invalid parameter name"),
])
def test_bad_templates_are_refused_with_a_reason(template: str, message: str) -> None:
    with pytest.raises(RouteError, match=message.replace("(", r"\(")):
        RouteTemplate(template)


def test_precedence_literal_then_constrained_then_plain_then_catch_all() -> None:
    table: RouteTable[str] = RouteTable()
    for template in ("items/{*rest}", "items/{name}", "items/{id:int}", "items/new"):
        table.add(template, None, template)

    def winner(path: str) -> str:
        match, _ = table.resolve(path, "GET")
        assert match is not None
        return match.route.target

    assert winner("items/new") == "items/new"
    assert winner("items/5") == "items/{id:int}"
    assert winner("items/five") == "items/{name}"
    assert winner("items/a/b") == "items/{*rest}"


def test_shorter_template_wins_over_an_optional_extension() -> None:
    table: RouteTable[str] = RouteTable()
    table.add("orders/{id?}", None, "optional")
    table.add("orders", None, "exact")
    assert table.resolve("orders", "GET")[0].route.target == "exact"
    assert table.resolve("orders/3", "GET")[0].route.target == "optional"


def test_methods_select_between_routes_and_a_mismatch_is_reported() -> None:
    table: RouteTable[str] = RouteTable()
    table.add("things/{id}", ["GET"], "read")
    table.add("things/{id}", ["post", "PUT"], "write")
    assert table.resolve("things/1", "GET")[0].route.target == "read"
    assert table.resolve("things/1", "put")[0].route.target == "write"
    assert table.resolve("things/1", "DELETE") == (None, True)
    assert table.resolve("other/1", "GET") == (None, False)


def test_same_template_and_method_twice_is_an_error() -> None:
    table: RouteTable[str] = RouteTable()
    table.add("things/{id}", ["GET"], "first")
    with pytest.raises(RouteError, match="declared twice"):
        table.add("Things/{other}", None, "second")
    table.add("things/{id:int}", ["GET"], "constrained")  # different constraint: allowed
