"""The dashboard's views of Helm targets, without I/O: chart, version, digest and revision
beside the image, and nothing of the kind for Deployment targets."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import timedelta

from shared.dashboard import build_release_detail, render_overview, render_release
from shared.ledger import DeployedChart, EnvironmentState
from tests.dashboard.test_dashboard_view import (
    NOW,
    PROD,
    QA,
    SECRET,
    SHOWN,
    WAITING_STATUS,
    Text,
    overview,
)

CHART_1 = DeployedChart("delivery", "1.0.0", "sha256:" + "c1" * 32)
CHART_2 = DeployedChart("delivery", "1.0.2", "sha256:" + "c2" * 32)
HELM_PROD = EnvironmentState(
    "delivery", "prod",
    current=replace(PROD.current, chart=CHART_1, revision=3),
    last_good=replace(PROD.last_good, chart=CHART_1, revision=3))
HELM_QA = EnvironmentState(
    "delivery", "qa",
    current=replace(QA.current, chart=CHART_2, revision=7),
    last_good=replace(QA.last_good, chart=CHART_1, revision=5))
HELM_STATUS = {  # a release that ran QA and production as Helm releases
    "qa": {"chart": "delivery", "version": "1.0.2", "digest": CHART_2.digest, "revision": 7},
    "prod": {"chart": "delivery", "version": "1.0.2", "digest": CHART_2.digest,
             "revision": 4}}


def test_what_runs_where_shows_chart_version_and_revision_beside_the_image() -> None:
    view = overview(environment_states={"delivery": [HELM_PROD, HELM_QA]})
    (row,) = view.services
    prod, qa = row.cell("prod"), row.cell("qa")
    assert prod is not None and qa is not None
    assert prod.current is not None and prod.current.helm is not None
    assert (prod.current.helm.chart, prod.current.helm.version, prod.current.helm.revision,
            prod.current.helm.digest) == ("delivery", "1.0.0", 3, "sha256:c1c1c1c1c1c1")
    html = render_overview(view)
    page = Text(html)
    assert "v1.0.0 sha256:aaaaaaaaaaaa chart delivery 1.0.0 · Helm revision 3 since 55 min" \
        in page.text
    assert "v1.0.2 sha256:cccccccccccc chart delivery 1.0.2 · Helm revision 7" in page.text
    # QA's last good release is the revision a rollback there goes back to
    assert "last good: v1.0.1 sha256:bbbbbbbbbbbb chart delivery 1.0.0 · Helm revision 5" \
        in page.text
    assert f'title="chart digest {CHART_1.digest}"' in html  # the full digest on hover
    cell = view.to_dict()["services"][0]["cells"][0]
    assert cell["current"]["helm"] == {"chart": "delivery", "version": "1.0.2",
                                       "digest": "sha256:c2c2c2c2c2c2",
                                       "fullDigest": CHART_2.digest, "revision": 7}


def test_deployment_targets_show_no_chart() -> None:
    view = overview()
    page = Text(render_overview(view))
    assert "chart" not in page.text and "Helm" not in page.text
    cell = view.to_dict()["services"][0]["cells"][1]
    assert cell["current"]["helm"] is None and cell["lastGood"]["helm"] is None


def test_release_page_names_chart_digest_and_revision_per_environment() -> None:
    shown = {**SHOWN, "durable": {"runtimeStatus": "Running", "customStatus": {
        **WAITING_STATUS, "helm": HELM_STATUS}}}
    view = build_release_detail(shown, now=NOW)
    assert [(env, h.version, h.revision) for env, h in view.helm] == [
        ("qa", "1.0.2", 7), ("prod", "1.0.2", 4)]
    html = render_release(view)
    page = Text(html)
    assert "Helm Environment Chart Version Chart digest Helm revision" in page.text
    assert "qa delivery 1.0.2 sha256:c2c2c2c2c2c2 7" in page.text
    assert "prod delivery 1.0.2 sha256:c2c2c2c2c2c2 4" in page.text
    assert f'<code title="{CHART_2.digest}">sha256:c2c2c2c2c2c2</code>' in html
    data = view.to_dict()
    assert data["helm"]["prod"] == {"chart": "delivery", "version": "1.0.2",
                                    "digest": "sha256:c2c2c2c2c2c2",
                                    "fullDigest": CHART_2.digest, "revision": 4}
    for text in (html, json.dumps(data)):
        assert SECRET not in text


def test_release_page_of_a_deployment_target_has_no_helm_section() -> None:
    view = build_release_detail(SHOWN, now=NOW)
    assert view.helm == () and view.to_dict()["helm"] == {}
    html = render_release(view)
    assert 'id="helm"' not in html and "chart" not in Text(html).text


def test_chart_fields_from_a_status_are_text_escaped_and_bounded() -> None:
    hostile = {"qa": {"chart": "<script>alert(1)</script>", "version": "1" * 500,
                      "digest": 'sha256:"><img src=x>', "revision": "7"},
               "prod": "not an entry"}
    shown = {**SHOWN, "durable": {"runtimeStatus": "Completed", "customStatus": {
        **WAITING_STATUS, "helm": hostile}}}
    view = build_release_detail(shown, now=NOW + timedelta(minutes=1))
    ((env, helm),) = view.helm
    assert env == "qa" and helm.revision is None and len(helm.version) == 128
    html = render_release(view)
    assert "<script>alert" not in html and "<img" not in html
    assert re.search(r"&lt;script&gt;alert\(1\)&lt;/script&gt;", html)
