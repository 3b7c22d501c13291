"""What a release changes: the versions in between (pure), the stored form, and
`what_changes` against the real registry and a real ledger (Azurite)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest

from sandbox.azurite import Azurite
from sandbox.faults import FaultProxy
from sandbox.images import build_image, push
from sandbox.registry import LocalRegistry
from sandbox.tls import TlsFiles
from shared.ledger import Ledger, ReleaseRecord
from shared.ledger.changes import ChangesBook, releases_since
from shared.registry.client import RegistryClient, RegistryEndpoint, RetrySettings
from shared.registry.provenance import REVISION, SOURCE, Provenance
from shared.releases.changes import (
    BETWEEN_SHOWN,
    Between,
    ReleaseChanges,
    versions_between,
    what_changes,
)

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
REV = {"1.0.0": "1" * 40, "1.1.0": "2" * 40}
SERVICE = "delivery"


def record(n: int, version: str, state: str, *, service: str = SERVICE) -> ReleaseRecord:
    at = T0 + timedelta(minutes=n)
    return ReleaseRecord(f"{service}-{n:04d}", service, version, "sha256:" + f"{n:064x}",
                         state, at, at)


def test_versions_between_are_those_created_in_between_oldest_first() -> None:
    rows = [record(5, "1.3.0", "WaitingForApproval"), record(1, "1.0.0", "Completed"),
            record(3, "1.1.1", "Failed"), record(2, "1.1.0", "Superseded"),
            record(4, "1.2.0", "Rejected"), record(6, "1.4.0", "Running")]

    found = versions_between(rows, "delivery-0001", "delivery-0005")

    assert found == [Between("delivery-0002", "1.1.0", "Superseded"),
                     Between("delivery-0003", "1.1.1", "Failed"),
                     Between("delivery-0004", "1.2.0", "Rejected")]
    assert versions_between(rows, "delivery-0004", "delivery-0005") == []
    assert versions_between(rows, "delivery-0099", "delivery-0005") is None
    # A proposed release not in the ledger yet: everything after the running one.
    assert [b.version for b in versions_between(rows, "delivery-0004", "x") or []] == [
        "1.3.0", "1.4.0"]
    # Running newer than proposed (a rollback to an older version): nothing in between.
    assert versions_between(rows, "delivery-0005", "delivery-0002") == []


def test_the_stored_form_reads_back_and_its_link_is_checked_again() -> None:
    proposed = Provenance("sha256:" + "a" * 64, "https://github.com/contoso/delivery",
                          REV["1.1.0"], "1.1.0")
    running = Provenance("sha256:" + "b" * 64, "https://github.com/contoso/delivery",
                         REV["1.0.0"], "1.0.0")
    changes = ReleaseChanges("prod", proposed, running, "delivery-0001", "1.0.0",
                             f"https://github.com/contoso/delivery/compare/{REV['1.0.0']}..."
                             f"{REV['1.1.0']}", None,
                             (Between("delivery-0002", "1.0.1", "Failed"),))

    assert ReleaseChanges.from_dict(changes.to_dict()) == changes
    forged = {**changes.to_dict(), "compareUrl": "javascript:alert(1)"}
    assert ReleaseChanges.from_dict(forged) == changes  # the link is rebuilt, not trusted
    hostile = changes.to_dict()
    hostile["proposed"]["source"] = "javascript:alert(1)"
    read = ReleaseChanges.from_dict(hostile)
    assert read is not None and read.compare_url is None
    assert ReleaseChanges.from_dict({**changes.to_dict(), "between": 7}) == replace(
        changes, between=())
    assert ReleaseChanges.from_dict({"environment": "prod"}) is None
    assert ReleaseChanges.from_dict("prod") is None


@pytest.fixture
def ledger(azurite: Azurite) -> Ledger:
    return Ledger.from_connection_string(azurite.connection_string,
                                         "ch" + uuid.uuid4().hex[:10])


@pytest.fixture
def client(fault_proxy: FaultProxy, tls_files: TlsFiles) -> RegistryClient:
    endpoint = RegistryEndpoint(fault_proxy.endpoint, "anonymous", str(tls_files.ca))
    return RegistryClient(endpoint, retry=RetrySettings(total=1, backoff_factor=0.01))


def changes_of(client: RegistryClient, repository: str, ledger: Ledger, release_id: str,
               digest: str) -> ReleaseChanges:
    return what_changes(client, repository, ledger, partial(releases_since, ledger),
                        service=SERVICE, release_id=release_id, digest=digest,
                        environment="prod")


def pushed(tmp_path: Path, registry: LocalRegistry, repository: str, version: str,
           labelled: bool = True) -> str:
    labels = {SOURCE: "https://github.com/contoso/delivery", REVISION: REV[version]}
    layout = build_image(tmp_path / f"{repository}-{version}", layer_sizes=[128],
                         seed=f"{repository}/{version}", tag=version,
                         labels=labels if labelled else None)
    return push(layout, registry, repository, version)


def test_what_changes_reads_both_images_and_the_ledger(
        tmp_path: Path, registry: LocalRegistry, client: RegistryClient,
        ledger: Ledger) -> None:
    repository = "chg" + uuid.uuid4().hex[:8]
    old, new = (pushed(tmp_path, registry, repository, v) for v in ("1.0.0", "1.1.0"))
    running = record(1, "1.0.0", "Completed")
    for row in (running, record(2, "1.0.1", "Failed"), record(3, "1.0.2", "Superseded"),
                record(4, "1.1.0", "WaitingForApproval"), record(5, "9.0.0", "Completed",
                                                                   service="other")):
        ledger.upsert_release(row)
    ledger.set_current(SERVICE, "prod", running.release_id, old, f"x/{repository}@{old}")

    changes = changes_of(client, repository, ledger, "delivery-0004", new)

    assert changes.proposed.revision == REV["1.1.0"] and changes.running is not None
    assert (changes.running.digest, changes.running.revision) == (old, REV["1.0.0"])
    assert changes.running_release == "delivery-0001" and changes.running_version == "1.0.0"
    assert changes.compare_url == (f"https://github.com/contoso/delivery/compare/"
                                   f"{REV['1.0.0']}...{REV['1.1.0']}")
    assert [(b.version, b.state) for b in changes.between] == [
        ("1.0.1", "Failed"), ("1.0.2", "Superseded")]
    assert changes.between_unknown is None

    book = ChangesBook.beside(ledger)
    book.record("delivery-0004", "prod", changes.to_dict())
    assert ReleaseChanges.from_dict(book.find("delivery-0004", "prod")) == changes
    assert list(book.changes("delivery-0004")) == ["prod"]
    assert book.find("delivery-0004", "qa") is None


def test_nothing_running_or_an_unlabelled_running_image_is_said(
        tmp_path: Path, registry: LocalRegistry, client: RegistryClient,
        ledger: Ledger) -> None:
    repository = "chg" + uuid.uuid4().hex[:8]
    old = pushed(tmp_path, registry, repository, "1.0.0", labelled=False)
    new = pushed(tmp_path, registry, repository, "1.1.0")

    first = changes_of(client, repository, ledger, "delivery-0002", new)
    assert first.running is None
    assert first.no_compare == "nothing recorded as running in prod"

    ledger.set_current(SERVICE, "prod", "delivery-0001", old, f"x/{repository}@{old}")
    second = changes_of(client, repository, ledger, "delivery-0002", new)
    assert second.running is not None and second.running.revision is None
    assert second.compare_url is None
    assert second.no_compare == "the running image's revision is unknown"
    assert second.between_unknown == "the running release delivery-0001 is not in the ledger"


def test_a_failing_registry_leaves_the_rest_known(
        tmp_path: Path, registry: LocalRegistry, fault_proxy: FaultProxy,
        client: RegistryClient, ledger: Ledger) -> None:
    repository = "chg" + uuid.uuid4().hex[:8]
    old, new = (pushed(tmp_path, registry, repository, v) for v in ("1.0.0", "1.1.0"))
    rows = [record(1, "1.0.0", "Completed")] + [
        record(n, f"1.0.{n}", "Failed") for n in range(2, BETWEEN_SHOWN + 5)]
    for row in rows:
        ledger.upsert_release(row)
    ledger.set_current(SERVICE, "prod", "delivery-0001", old, f"x/{repository}@{old}")
    fault_proxy.inject(503, times=50, path_contains=f"/{repository}/")

    changes = changes_of(client, repository, ledger, "delivery-9999", new)

    assert changes.proposed.problem is not None and "HTTP 503" in changes.proposed.problem
    assert changes.compare_url is None and changes.no_compare is not None
    assert len(changes.between) == BETWEEN_SHOWN and changes.more_between == 3


def test_a_proposed_release_older_than_the_running_one_has_nothing_in_between(
        tmp_path: Path, registry: LocalRegistry, client: RegistryClient,
        ledger: Ledger) -> None:
    repository = "chg" + uuid.uuid4().hex[:8]
    old, new = (pushed(tmp_path, registry, repository, v) for v in ("1.0.0", "1.1.0"))
    for row in (record(1, "1.0.0", "Running"), record(2, "1.0.1", "Failed"),
                record(3, "1.1.0", "Completed"), record(4, "1.2.0", "Failed")):
        ledger.upsert_release(row)
    ledger.set_current(SERVICE, "prod", "delivery-0003", new, f"x/{repository}@{new}")

    back = changes_of(client, repository, ledger, "delivery-0001", old)

    assert back.between == () and back.between_unknown is None
    assert back.compare_url == (f"https://github.com/contoso/delivery/compare/"
                                f"{REV['1.1.0']}...{REV['1.0.0']}")


def test_releases_since_reads_one_service_from_a_moment_on(ledger: Ledger) -> None:
    rows = [record(n, f"1.0.{n}", "Completed") for n in range(1, 6)]
    for row in [*rows, record(9, "9.9.9", "Completed", service="other")]:
        ledger.upsert_release(row)

    found = releases_since(ledger, SERVICE, rows[2].created_at)

    assert [r.release_id for r in found] == ["delivery-0003", "delivery-0004", "delivery-0005"]


def test_a_running_image_gone_from_its_source_repository_is_read_where_it_runs(
        tmp_path: Path, registry: LocalRegistry, client: RegistryClient,
        ledger: Ledger) -> None:
    repository = "chg" + uuid.uuid4().hex[:8]
    new = pushed(tmp_path, registry, repository, "1.1.0")
    old = pushed(tmp_path, registry, f"prod/{repository}", "1.0.0")  # only promoted copy
    ledger.upsert_release(record(1, "1.0.0", "Completed"))
    ledger.set_current(SERVICE, "prod", "delivery-0001", old,
                       f"{client.endpoint.host}/prod/{repository}@{old}")

    changes = changes_of(client, repository, ledger, "delivery-0002", new)

    assert changes.running is not None and changes.running.revision == REV["1.0.0"]
    assert changes.compare_url is not None
    # Another registry's image is never looked up on this one.
    ledger.set_current(SERVICE, "prod", "delivery-0001", old,
                       f"elsewhere.example/prod/{repository}@{old}")
    elsewhere = changes_of(client, repository, ledger, "delivery-0002", new)
    assert elsewhere.running is not None and elsewhere.running.revision is None
    assert elsewhere.running.problem is not None and "not found" in elsewhere.running.problem
