"""A port whose only sockets are in TIME-WAIT (what a `kill -9` leaves) is free for the stack:
the port check and every listener of the stack bind with SO_REUSEADDR; a live listener still
counts as busy."""

from __future__ import annotations

import asyncio
import socket
import time
import urllib.request
from pathlib import Path

import pytest

from devhost.host import Host
from sandbox.azurite import Azurite
from sandbox.kube.server import KubeSimulator
from sandbox.registry import LocalRegistry
from sandbox.stack import Ports, Stack, StackError, port_free
from sandbox.teams_sink import TeamsSink
from sandbox.tls import TlsFiles

APPS = Path(__file__).resolve().parents[1] / "devhost" / "apps"
TIME_WAIT, LISTEN = "06", "0A"  # socket states in /proc/net/tcp


def tcp_states(port: int) -> list[str]:
    """States of the IPv4 TCP sockets whose local port is `port` (Linux /proc/net/tcp)."""
    states = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port:
            states.append(fields[3])
    return states


def time_wait_port() -> int:
    """A loopback port left with a socket in TIME-WAIT and no listener.

    The server side closes the accepted connection first, so the socket that stays in
    TIME-WAIT is the one whose local port is the listener's, as after a killed server.
    """
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = listener.accept()
        accepted.close()  # server side first: FIN_WAIT, then TIME-WAIT once the client closes
        client.recv(1)  # the server's FIN has arrived
        client.close()
    deadline = time.monotonic() + 5
    while tcp_states(port) != [TIME_WAIT] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert tcp_states(port) == [TIME_WAIT], tcp_states(port)
    return port


def test_a_port_in_time_wait_is_free_and_a_listening_one_is_not() -> None:
    port = time_wait_port()
    assert port_free(port)
    with socket.socket() as live:
        live.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        live.bind(("127.0.0.1", port))
        live.listen()
        assert LISTEN in tcp_states(port)
        assert not port_free(port)
    assert port_free(port)


def test_the_stack_takes_a_configured_port_in_time_wait(tmp_path: Path) -> None:
    port = time_wait_port()
    stack = Stack(tmp_path, Ports(app=port))
    assert stack._port("app", {}) == port  # noqa: SLF001 - the check start() makes first
    again = Stack(tmp_path)  # no port configured: the last run's port again
    assert again._port("app", {"app": port}) == port  # noqa: SLF001
    with socket.socket() as live:
        live.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        live.bind(("127.0.0.1", port))
        live.listen()
        with pytest.raises(StackError, match=f"port {port} \\(app\\) is in use"):
            stack._port("app", {})  # noqa: SLF001


def test_every_listener_of_the_stack_binds_a_port_in_time_wait(tmp_path: Path,
                                                               tls_files: TlsFiles) -> None:
    with TeamsSink(port=time_wait_port()) as teams:
        assert tcp_states(teams.port).count(LISTEN) == 1
    with KubeSimulator(port=time_wait_port(), tls=tls_files) as kube:
        assert tcp_states(kube.port).count(LISTEN) == 1
    with LocalRegistry(tmp_path / "registry", tls_files, port=time_wait_port()) as registry:
        assert tcp_states(registry.port).count(LISTEN) == 1
    with Azurite(tmp_path / "azurite", *(time_wait_port() for _ in range(3))) as azurite:
        assert all(tcp_states(port).count(LISTEN) == 1 for port in azurite.ports)


def test_devhost_serves_on_a_port_in_time_wait(tmp_path: Path) -> None:
    port = time_wait_port()

    async def scenario() -> bytes:
        host = Host(APPS / "http_app", port=port, data_dir=tmp_path / "data")
        await host.start()
        try:
            url = f"{host.base_url}/api/hello?name=again"
            return await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=10).read())
        finally:
            await host.stop()

    assert asyncio.run(scenario()) == b"Hello, again"
