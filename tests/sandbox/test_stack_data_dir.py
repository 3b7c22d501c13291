"""What a release through the local stack leaves in its data directory: no secret in any log,
every file holding one private (0600, in 0700 directories), and a devhost log that stays
small at the default log level."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.push import push_version, source_labels
from sandbox.stack import Stack, StackFacts
from sandbox.stack_policy import SIGNING_KEY_FILE
from tests.sandbox.stack_helpers import ANY_PORT, get_json, wait_until

RELEASE_SECONDS = 120
HTTP_LOGGING = "azure.core.pipeline.policies.http_logging_policy"
QUIET_LOG_BYTES = 24 * 1024  # measured about 7.5 KB for this release; 62 KB with SDK logging


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack in which 1.0.0 was pushed and waits at production's gate."""
    with Stack(tmp_path_factory.mktemp("stack"), ANY_PORT, print_card=lambda _: None) as stack:
        facts = stack.facts
        assert facts is not None
        pushed = push_version(facts, "delivery", "1.0.0")
        wait_until(lambda: (get_json(pushed.release_url)[1] or {}).get("state")
                   == "WaitingForApproval", RELEASE_SECONDS, "1.0.0 waiting at the gate")
        yield stack


def secrets_of(facts: StackFacts) -> dict[str, str]:
    """Each secret file of the stack (relative path) and the value it holds."""
    data = Path(facts.data_dir)
    files = [Path(facts.webhook_token_file), Path(facts.control_token_file),
             data / SIGNING_KEY_FILE, *map(Path, facts.kube_token_files.values())]
    return {str(path.relative_to(data)): path.read_text().strip() for path in files}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_no_log_holds_a_secret_and_every_file_holding_one_is_private(released: Stack) -> None:
    facts = released.facts
    assert facts is not None
    data = Path(facts.data_dir)
    secrets = secrets_of(facts)
    assert len(set(secrets.values())) == len(secrets) == 5
    holders: dict[str, list[str]] = {}
    for path in data.rglob("*"):
        if path.is_file() and not path.is_symlink():
            content = path.read_bytes()
            found = [name for name, value in secrets.items() if value.encode() in content]
            if found:
                holders[str(path.relative_to(data))] = found
    # Each secret in its own file; the webhook token also in the registry's config, no more.
    expected = {name: [name] for name in secrets}
    expected["registry/config.yml"] = ["webhook-token"]
    assert holders == expected
    registry_log = data / "registry" / "registry.log"
    assert "PUT /v2/delivery/manifests/1.0.0" in registry_log.read_text()  # it did log the push

    private = [data / name for name in holders] + [data / "tls" / "key.pem", registry_log,
                                                   Path(facts.devhost_log)]
    assert {str(path.relative_to(data)): oct(mode(path)) for path in private} == {
        str(path.relative_to(data)): "0o600" for path in private}
    folders = {data, *(path.parent for path in private)}
    assert {str(folder): oct(mode(folder)) for folder in folders} == {
        str(folder): "0o700" for folder in folders}


def test_the_devhost_log_leaves_out_sdk_requests_at_the_default_level(released: Stack) -> None:
    facts = released.facts
    assert facts is not None
    log = Path(facts.devhost_log).read_text()
    assert "devhost.invocations: deploy_image (activityTrigger)" in log  # the release is in it
    assert HTTP_LOGGING not in log and "'Authorization': 'REDACTED'" not in log
    assert len(log.encode()) < QUIET_LOG_BYTES, f"{len(log.encode())} bytes"


def test_a_pushed_image_carries_its_source_revision_to_the_gate(released: Stack) -> None:
    facts = released.facts
    assert facts is not None
    status, rows = get_json(f"{facts.app_url}/api/releases?service=delivery")
    assert status == 200
    (row,) = [r for r in rows if r["version"] == "1.0.0"]
    # request_approval keeps the changes while the ledger already says WaitingForApproval.
    shown = wait_until(lambda: (v := get_json(row["statusUri"])[1]) and "changes" in v and v,
                       RELEASE_SECONDS, "the changes at the gate kept")
    changes = shown["changes"]["prod"]
    assert changes["proposed"] == {
        "digest": row["digest"], "source": "https://github.com/contoso/delivery",
        "revision": source_labels("delivery", "1.0.0")["org.opencontainers.image.revision"],
        "version": "1.0.0", "problem": None}
    assert changes["running"] is None  # the first release: nothing ran in prod before
