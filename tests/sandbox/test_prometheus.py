"""LocalPrometheus: scrapes what its file_sd file lists, keeps its data under its folder across
restarts, answers queries, and fails loudly."""

from __future__ import annotations

import json
import socket
import stat
from pathlib import Path

import pytest

from sandbox.prometheus import JOB, LocalPrometheus, PrometheusError, write_targets
from sandbox.tools import ToolMissingError
from tests.analysis.loopback import LoopbackServer, MetricsTarget


def test_scrapes_the_file_targets_and_keeps_samples_across_a_restart(tmp_path: Path) -> None:
    targets = tmp_path / "sd" / "targets.json"
    targets.parent.mkdir()
    with LoopbackServer(MetricsTarget()) as target:
        write_targets(targets, [{"targets": [target.host], "labels": {"env": "qa"}}])
        local = LocalPrometheus(tmp_path / "prom", targets_file=targets)
        with local:
            port = local.port
            (series,) = local.wait_for('demo_fixed_total{code="500"}')
            assert series["metric"] == {"__name__": "demo_fixed_total", "code": "500",
                                        "env": "qa", "instance": target.host, "job": JOB}
            assert series["value"][1] == "7"
            assert local.query("up")[0]["value"][1] == "1"
        assert not local.running
        with local:
            assert local.port == port
            (kept,) = local.query('max_over_time(demo_fixed_total{code="200"}[1h])')
            assert kept["value"][1] == "42"
    assert {"tsdb", "prometheus.yml", "prometheus.log"} <= {
        path.name for path in (tmp_path / "prom").iterdir()}


def test_config_scrapes_every_interval_on_loopback_only(tmp_path: Path) -> None:
    local = LocalPrometheus(tmp_path, scrape_interval="2s")
    with local:
        config = json.loads(local.config_path.read_text())
        assert local.url == f"http://127.0.0.1:{local.port}"
        assert local.targets() == []
        assert f'msg="Listening on" address=127.0.0.1:{local.port}' in local.log_tail(100)
    assert config["global"] == {"scrape_interval": "2s", "scrape_timeout": "2s",
                                "evaluation_interval": "2s"}
    (job,) = config["scrape_configs"]
    assert job["file_sd_configs"] == [{"files": [str(tmp_path / "targets.json")],
                                       "refresh_interval": "2s"}]
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o700
    assert stat.S_IMODE(local.log_path.stat().st_mode) == 0o600


def test_query_helper_shapes_and_errors(prometheus: LocalPrometheus) -> None:
    assert prometheus.running
    assert [sample["value"][1] for sample in prometheus.query("1 + 1")] == ["2"]
    assert prometheus.query('absent_metric{job="nobody"}') == []
    with pytest.raises(PrometheusError, match="parse error: unclosed left parenthesis"):
        prometheus.query("sum(")
    with pytest.raises(PrometheusError, match=r"still gives \[\] after 0.3 s"):
        prometheus.wait_for('absent_metric{job="nobody"}', timeout=0.3)


def test_add_targets_keeps_the_groups_listed(tmp_path: Path) -> None:
    local = LocalPrometheus(tmp_path)
    local.targets_file.parent.mkdir(parents=True, exist_ok=True)
    local.set_targets([{"targets": ["127.0.0.1:1"], "labels": {"job": "a"}}])
    local.add_targets([{"targets": ["127.0.0.1:2"]}])
    assert local.targets() == [{"targets": ["127.0.0.1:1"], "labels": {"job": "a"}},
                               {"targets": ["127.0.0.1:2"]}]
    with pytest.raises(ValueError, match="a list of host:port strings"):
        local.add_targets([{"targets": "127.0.0.1:3"}])
    assert len(local.targets()) == 2
    assert [path.name for path in tmp_path.iterdir()] == ["targets.json"]


def test_missing_binary_says_what_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(ToolMissingError) as error:
        LocalPrometheus(tmp_path).start()
    assert str(error.value) == (
        "prometheus not found: install it with `apt-get install -y prometheus` "
        "(or run `make test` as root)")


def test_port_in_use_is_reported_with_the_log(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        local = LocalPrometheus(tmp_path, port=port)
        with pytest.raises(PrometheusError, match="address already in use") as error:
            local.start()
    assert f"before serving on http://127.0.0.1:{port}" in str(error.value)
    assert not local.running

