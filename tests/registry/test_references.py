"""Repository names, tags, digests and promotion targets (pure rules)."""

import pytest

from shared.registry.errors import InvalidReference
from shared.registry.references import (
    ImageName,
    check_reference,
    check_repository,
    check_tag,
    promotion_target,
)

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize("name", ["delivery", "prod/delivery", "team-a/svc_x/api.v2",
                                  "a__b", "a--b", "x" * 255])
def test_valid_repositories(name: str) -> None:
    assert check_repository(name) == name


@pytest.mark.parametrize("name", ["", "Delivery", "prod//delivery", "/delivery", "delivery/",
                                  "-delivery", "de..livery", "x" * 256, "a b", "a:b"])
def test_invalid_repositories(name: str) -> None:
    with pytest.raises(InvalidReference, match="invalid repository name"):
        check_repository(name)


@pytest.mark.parametrize("tag", ["v1.4.2", "latest", "1", "_x", "A" * 128])
def test_valid_tags(tag: str) -> None:
    assert check_tag(tag) == tag


@pytest.mark.parametrize("tag", ["", ".v1", "-v1", "v1/2", "A" * 129, "v 1"])
def test_invalid_tags(tag: str) -> None:
    with pytest.raises(InvalidReference, match="invalid tag"):
        check_tag(tag)


@pytest.mark.parametrize("ref", ["sha256:" + "A" * 64, "sha256:abc", "sha512:" + "a" * 128])
def test_invalid_digests(ref: str) -> None:
    with pytest.raises(InvalidReference):
        check_reference(ref)


def test_image_names_parse_and_print() -> None:
    assert ImageName.parse("prod/delivery:v1.4.2") == ImageName("prod/delivery", "v1.4.2")
    assert ImageName.parse(f"delivery@{DIGEST}") == ImageName("delivery", DIGEST)
    assert str(ImageName("delivery", DIGEST)) == f"delivery@{DIGEST}"
    assert str(ImageName("prod/delivery", "v1")) == "prod/delivery:v1"
    for bad in ["delivery", "delivery@v1", "127.0.0.1:5000/delivery"]:
        with pytest.raises(InvalidReference):
            ImageName.parse(bad)


def test_promotion_target_prefixes_the_namespace_once() -> None:
    assert promotion_target("delivery", "prod/") == "prod/delivery"
    assert promotion_target("team/delivery", "/prod") == "prod/team/delivery"
    with pytest.raises(InvalidReference, match="already in namespace"):
        promotion_target("prod/delivery", "prod/")
    with pytest.raises(InvalidReference, match="empty"):
        promotion_target("delivery", "/")
