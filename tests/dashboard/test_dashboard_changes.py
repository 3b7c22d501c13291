"""A release page's "What it changes" section, without I/O: per gate the revisions, the
compare link and the versions in between, from the releases API's `changes`; nothing
without them; hostile labels escaped and never a link."""

from __future__ import annotations

from typing import Any

from shared.dashboard import build_release_detail, render_release
from shared.registry.provenance import Provenance
from shared.releases.changes import Between, ReleaseChanges
from tests.dashboard.test_dashboard_view import NOW, SHOWN

OLD, NEW = "0123456789abcdef0123456789abcdef01234567", "fedcba9876543210fedcba9876543210fedcba98"
SOURCE = "https://dev.azure.com/contoso/Shop/_git/delivery"
COMPARE = (f"{SOURCE}/branchCompare?baseVersion=GC{OLD}&targetVersion=GC{NEW}")


def kept() -> dict[str, Any]:
    """What the changes book holds for prod, as the releases API passes it on."""
    return ReleaseChanges(
        "prod", Provenance("sha256:" + "9f" * 32, SOURCE, NEW, "1.1.0"),
        Provenance("sha256:" + "41" * 32, SOURCE, OLD, "1.0.0"), "delivery-41", "1.0.0",
        COMPARE, None, (Between("delivery-50", "1.0.1", "Rejected"),)).to_dict()


def test_the_release_page_shows_revisions_the_compare_link_and_versions_between() -> None:
    view = build_release_detail({**SHOWN, "changes": {"prod": kept()}}, now=NOW)

    page = render_release(view)

    assert '<section id="changes">' in page
    assert f'<a class="compare" href="{COMPARE.replace("&", "&amp;")}"' in page
    assert f"{OLD[:7]}…{NEW[:7]}" in page and "1.0.1" in page and "(Rejected)" in page
    assert view.to_dict()["changes"]["prod"]["compareUrl"] == COMPARE


def test_no_section_without_changes_and_hostile_text_stays_text() -> None:
    plain = render_release(build_release_detail(SHOWN, now=NOW))
    assert 'id="changes"' not in plain

    hostile = kept()
    hostile["proposed"]["source"] = "javascript:alert(1)"
    hostile["proposed"]["revision"] = "<script>alert(1)</script>"
    hostile["compareUrl"] = "javascript:alert(1)"
    page = render_release(build_release_detail({**SHOWN, "changes": {"prod": hostile,
                                                                     "qa": "junk"}}, now=NOW))
    assert "<script>alert" not in page and 'class="compare"' not in page
    assert "&lt;script&gt;" in page
