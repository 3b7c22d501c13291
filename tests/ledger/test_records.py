"""Pure parts of the ledger: table keys, record validation and round trips, connection strings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from sandbox.azurite import Azurite
from shared.ledger import EventRecord, LedgerError, ReleaseRecord, StageState
from shared.ledger.connection import (
    check_prefix,
    development_storage,
    expand_connection_string,
    parse_connection_string,
    public_endpoint,
    storage_target,
    table_prefix,
)
from shared.ledger.records import (
    KEPT_DELIVERY_TOKENS,
    DeployedChart,
    EnvironmentState,
    delivery_tokens,
    deployment_entity,
    event_entity,
    event_partition,
    redelivery_entity,
    table_key,
)

T0 = datetime(2026, 11, 22, 10, 0, 0, 123456, tzinfo=UTC)


def event(**changes: object) -> EventRecord:
    fields: dict[str, object] = dict(
        event_id="e-1", received_at=T0, source="acr-webhook", action="push",
        registry="myacr.azurecr.io", repository="delivery", tag="v1.4.2",
        digest="sha256:" + "a" * 64, service="delivery", outcome="started", reason="",
        release_id="delivery-aaaaaaaaaaaaaaaa",
    )
    fields.update(changes)
    return EventRecord(**fields)


@pytest.mark.parametrize(("value", "key"), [
    ("delivery", "delivery"),
    ("sha256:abc", "sha256:abc"),
    ("a/b#c?d\\e", "a%2Fb%23c%3Fd%5Ce"),
    ("50%", "50%25"),
    ("tab\there", "tab%09here"),
    ("_unmatched", "%5Funmatched"),
    ("mid_dle", "mid_dle"),
])
def test_table_keys_encode_what_azure_forbids(value: str, key: str) -> None:
    assert table_key(value, "id") == key


def test_table_keys_refuse_empty_and_huge_values() -> None:
    with pytest.raises(ValueError, match="event id is empty"):
        table_key("", "event id")
    with pytest.raises(ValueError, match="longer than"):
        table_key("x" * 600, "event id")


def test_unmatched_events_have_a_partition_no_service_can_take() -> None:
    assert event_partition(None) == "_unmatched"
    assert event_partition("_unmatched") != event_partition(None)


def test_event_outcome_must_be_known() -> None:
    with pytest.raises(ValueError, match="outcome 'maybe' is not one of started"):
        event(outcome="maybe")


def test_release_state_must_be_known() -> None:
    with pytest.raises(ValueError, match="release state 'Done'"):
        ReleaseRecord("r", "s", "1", "sha256:x", "Done", T0, T0)


def test_times_are_kept_in_utc_and_naive_means_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert event(received_at=T0.astimezone(plus_two)).received_at == T0
    assert event(received_at=T0.astimezone(plus_two)).received_at.tzinfo == UTC
    assert event(received_at=T0.replace(tzinfo=None)).received_at == T0


def test_event_round_trips_through_entity_and_json() -> None:
    original = event(tag=None, service=None, release_id=None, outcome="ignored",
                     reason="push without a tag")
    assert EventRecord.from_entity(original.to_entity()) == original
    assert EventRecord.from_dict(original.to_dict()) == original
    assert original.to_entity()["PartitionKey"] == "_unmatched"


def test_a_counted_event_round_trips_and_an_old_row_reads_as_one_delivery() -> None:
    counted = event(deliveries=3, last_delivered_at=T0 + timedelta(minutes=5))
    assert EventRecord.from_entity(counted.to_entity()) == counted
    assert EventRecord.from_dict(counted.to_dict()) == counted
    old_row = {key: value for key, value in event().to_entity().items()
               if key not in ("Deliveries", "LastDeliveredAt")}
    assert EventRecord.from_entity(old_row) == event()
    assert event().last_delivered_at == T0
    with pytest.raises(ValueError, match="deliveries must be at least 1"):
        event(deliveries=0)


def test_a_redelivery_counts_and_keeps_the_first_outcome() -> None:
    row = event_entity(event(), "t1")
    later = event(outcome="duplicate", reason="release exists",
                  received_at=T0 + timedelta(minutes=2))
    merge = redelivery_entity(row, later, "t2")
    assert merge == {"PartitionKey": row["PartitionKey"], "RowKey": row["RowKey"],
                     "Deliveries": 2, "LastDeliveredAt": T0 + timedelta(minutes=2),
                     "DeliveryTokens": "t1 t2"}
    earlier = redelivery_entity({**row, **merge}, event(outcome="duplicate"), "t3")
    assert earlier["Deliveries"] == 3
    assert earlier["LastDeliveredAt"] == T0 + timedelta(minutes=2)  # the latest stays


def test_a_started_delivery_overtaken_by_its_redelivery_still_shows_started() -> None:
    overtaking = event(outcome="duplicate", reason="release exists",
                       received_at=T0 + timedelta(seconds=1))
    merge = redelivery_entity(event_entity(overtaking, "t1"), event(reason="delivery v1"),
                              "t2")
    assert {key: merge[key] for key in ("Outcome", "Reason", "ReleaseId", "ReceivedAt")} == {
        "Outcome": "started", "Reason": "delivery v1",
        "ReleaseId": "delivery-aaaaaaaaaaaaaaaa", "ReceivedAt": T0}
    assert merge["LastDeliveredAt"] == T0 + timedelta(seconds=1)


def test_an_event_row_keeps_only_the_latest_write_tokens() -> None:
    row = event_entity(event(), "t0")
    for n in range(1, 20):
        row.update(redelivery_entity(row, event(outcome="duplicate"), f"t{n}"))
    assert row["Deliveries"] == 20
    assert delivery_tokens(row) == [f"t{n}" for n in range(20 - KEPT_DELIVERY_TOKENS, 20)]


def test_release_round_trips_with_stages_in_order() -> None:
    release = ReleaseRecord(
        "delivery-aaaa", "delivery", "v1.4.2", "sha256:aa", "WaitingForApproval", T0, T0,
        environment="prod", step="approval",
        stages={"qa": StageState("Succeeded", T0, T0 + timedelta(minutes=3), "healthy"),
                "prod": StageState("WaitingForApproval", T0 + timedelta(minutes=4))},
    )
    entity = release.to_entity()
    assert isinstance(entity["Stages"], str)
    assert ReleaseRecord.from_entity(entity) == release
    assert list(ReleaseRecord.from_entity(entity).stages) == ["qa", "prod"]
    assert ReleaseRecord.from_dict(release.to_dict()) == release


CHART = DeployedChart("delivery", "1.4.2", "sha256:" + "c" * 64)


def test_a_helm_deployment_keeps_its_chart_and_revision_and_other_rows_read_as_none() -> None:
    row = deployment_entity("Current", "delivery", "prod", "d1", "sha256:aa", "r/d@sha256:aa",
                            T0, chart=CHART, revision=3)
    current = EnvironmentState.from_entity(row).current
    assert current is not None and (current.chart, current.revision) == (CHART, 3)
    assert current.to_dict()["chart"] == {"name": "delivery", "version": "1.4.2",
                                          "digest": "sha256:" + "c" * 64}
    assert current.to_dict()["revision"] == 3

    plain = deployment_entity("Current", "delivery", "prod", "d2", "sha256:bb", "r/d@sha256:bb",
                              T0)
    row.update(plain)  # a Deployment target (or a restore) merged over the Helm slot
    current = EnvironmentState.from_entity(row).current
    assert current is not None and current.release_id == "d2"
    assert (current.chart, current.revision) == (None, None)
    assert set(current.to_dict()) == {"releaseId", "digest", "image", "since"}
    old = {key: value for key, value in plain.items() if "Chart" not in key
           and "Revision" not in key}  # a row written before charts were recorded
    assert EnvironmentState.from_entity(old).current == current


@pytest.mark.parametrize("chart, revision", [
    ({"name": "delivery", "digest": "d"}, 0), ({"name": 1, "version": "1", "digest": "d"},
                                                    True),
    ("delivery", -1), (None, "3"), ({"name": "", "version": "1", "digest": "d"}, 2.0)])
def test_a_malformed_chart_or_revision_is_none(chart: object, revision: object) -> None:
    row = deployment_entity("Good", "delivery", "qa", "d1", "sha256:aa", "r/d@sha256:aa", T0)
    row.update(GoodChartName=chart if isinstance(chart, str) else "", GoodRevision=revision)
    good = EnvironmentState.from_entity(row).last_good
    assert good is not None and (good.chart, good.revision) == (None, None)
    assert DeployedChart.from_dict(chart) is None
    assert DeployedChart.from_dict({**CHART.to_dict(), "source": "oci://r/c"}) == CHART


def test_a_chart_put_back_by_helm_rollback_has_no_digest() -> None:
    chart = DeployedChart.from_dict({"name": "delivery", "version": "1.0.0", "digest": None})
    assert chart == DeployedChart("delivery", "1.0.0", None)
    row = deployment_entity("Good", "delivery", "qa", "d1", "sha256:aa", "r/d@sha256:aa", T0,
                            chart=chart, revision=3)
    good = EnvironmentState.from_entity(row).last_good
    assert good is not None and (good.chart, good.revision) == (chart, 3)


def test_development_storage_expands_to_the_azurite_default_ports() -> None:
    expected = Azurite(Path("/unused"), 10000, 10001, 10002).connection_string
    assert expand_connection_string("UseDevelopmentStorage=true") == expected
    assert expand_connection_string(" usedevelopmentstorage=TRUE; ") == expected
    assert development_storage() == expected


def test_development_storage_proxy_uri_moves_the_host() -> None:
    expanded = expand_connection_string(
        "UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://azurite.local")
    assert "TableEndpoint=http://azurite.local:10002/devstoreaccount1" in expanded
    assert "BlobEndpoint=http://azurite.local:10000/devstoreaccount1" in expanded


def test_other_connection_strings_pass_through() -> None:
    real = ("DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5==;"
            "EndpointSuffix=core.windows.net")
    assert expand_connection_string(real) == real
    assert parse_connection_string(real)["AccountKey"] == "a2V5=="


def test_bad_connection_strings_say_so_without_echoing_them() -> None:
    with pytest.raises(LedgerError, match="empty"):
        expand_connection_string("  ")
    with pytest.raises(LedgerError, match="malformed") as caught:
        expand_connection_string("AccountName=acct;s3cr3tWithoutEquals")
    assert "s3cr3t" not in str(caught.value)


def test_settings_pick_connection_string_then_identity() -> None:
    target = storage_target({"AzureWebJobsStorage": "UseDevelopmentStorage=true"})
    assert target.connection_string == development_storage()
    by_name = storage_target({"AzureWebJobsStorage__accountName": "acct",
                              "AzureWebJobsStorage__clientId": "cid"})
    assert by_name.table_endpoint == "https://acct.table.core.windows.net"
    assert by_name.client_id == "cid"
    by_uri = storage_target({"AzureWebJobsStorage__tableServiceUri": "https://x.example/"})
    assert by_uri.table_endpoint == "https://x.example"
    with pytest.raises(LedgerError, match="AzureWebJobsStorage is not set"):
        storage_target({})


def test_table_prefix_setting_and_rule() -> None:
    assert table_prefix({}) == "release"
    assert table_prefix({"LEDGER_TABLE_PREFIX": "staging2"}) == "staging2"
    for bad in ("2fast", "with-dash", "", "a" * 52):
        with pytest.raises(LedgerError, match="prefix"):
            check_prefix(bad)


def test_public_endpoint_drops_query_and_user_info() -> None:
    assert public_endpoint("https://u:p@acct.table.core.windows.net/?sv=1&sig=abc") \
        == "https://acct.table.core.windows.net"
