"""LocalRegistry: serves /v2/ over TLS, keeps images across restarts, fails loudly, keeps its
notification headers out of its log."""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.registry import LocalRegistry, RegistryError
from sandbox.tls import TlsFiles
from sandbox.tools import ToolMissingError
from tests.sandbox.helpers import request, upload_blob


def test_serves_v2_over_tls(registry: LocalRegistry, tls_files: TlsFiles) -> None:
    reply = request(registry.endpoint, "GET", "/v2/", tls_files)
    assert reply.status == 200
    assert reply.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert registry.endpoint == f"https://{registry.host}"
    assert registry.host.startswith("127.0.0.1:")


def test_restart_on_the_same_port_keeps_blobs(tmp_path: Path, tls_files: TlsFiles) -> None:
    local = LocalRegistry(tmp_path, tls_files)
    with local:
        port = local.port
        digest = upload_blob(local.endpoint, "keep/me", b"persisted", tls_files)
    assert not local.running
    with local:
        assert local.port == port
        reply = request(local.endpoint, "GET", f"/v2/keep/me/blobs/{digest}", tls_files)
        assert (reply.status, reply.body) == (200, b"persisted")
    assert "storage" in {path.name for path in tmp_path.iterdir()}


def test_missing_binary_says_what_to_install(
    tmp_path: Path, tls_files: TlsFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(ToolMissingError) as error:
        LocalRegistry(tmp_path, tls_files).start()
    assert str(error.value) == (
        "docker-registry not found: install it with `apt-get install -y docker-registry` "
        "(or run `make test` as root)"
    )


def test_port_in_use_is_reported_with_the_log(tmp_path: Path, tls_files: TlsFiles) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        local = LocalRegistry(tmp_path, tls_files, port=port)
        with pytest.raises(RegistryError, match="address already in use") as error:
            local.start()
    assert f"127.0.0.1:{port}" in str(error.value)
    assert not local.running


def test_config_enables_deletes_and_notifications(tmp_path: Path, tls_files: TlsFiles) -> None:
    local = LocalRegistry(tmp_path, tls_files, notify_url="http://127.0.0.1:9/events",
                          notify_headers={"Authorization": "Bearer s3cret"})
    with local:
        config = json.loads(local.config_path.read_text())
    assert config["storage"]["delete"] == {"enabled": True}
    assert config["http"]["addr"] == local.host
    (endpoint,) = config["notifications"]["endpoints"]
    assert endpoint["url"] == "http://127.0.0.1:9/events"
    assert endpoint["headers"] == {"Authorization": ["Bearer s3cret"]}
    assert local.config_path.stat().st_mode & 0o077 == 0


def test_notification_headers_stay_out_of_its_log(tmp_path: Path, tls_files: TlsFiles) -> None:
    token = f"Bearer log-test-{secrets.token_hex(12)}"
    folder = tmp_path / "registry"
    folder.mkdir()
    old_log = folder / "registry.log"  # what an older run logged at level info
    old_log.write_text('level=info msg="configuring endpoint sandbox (http://127.0.0.1:9/x), '
                       f'timeout=2s, headers=map[Authorization:[{token}]]" service=registry\n')
    old_log.chmod(0o644)
    with closed_port() as port:
        local = LocalRegistry(folder, tls_files, notify_url=f"http://127.0.0.1:{port}/events",
                              notify_headers={"Authorization": token})
        with local:
            upload_blob(local.endpoint, "notify/me", b"an event to deliver", tls_files)
            # The endpoint refuses: the registry logs the failed delivery (at error).
            deadline = time.monotonic() + 20
            while "error posting" not in local.log_path.read_text():
                assert time.monotonic() < deadline, local.log_tail()
                time.sleep(0.1)
    text = local.log_path.read_text()
    assert token.split()[1] not in text
    assert "headers=[redacted]" in text and "POST /v2/notify/me/blobs/uploads/" in text
    assert {name: oct(stat.S_IMODE((folder / name).stat().st_mode))
            for name in (".", "config.yml", "registry.log")} == {
        ".": "0o700", "config.yml": "0o600", "registry.log": "0o600"}
    assert token in local.config_path.read_text()  # where it must be, readable by us only


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port nothing listens on (bound, not listening, so nothing else takes it)."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield holder.getsockname()[1]
