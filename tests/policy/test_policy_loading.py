"""Loading the policy: the sample file, the app's file setting, repository ownership."""

from __future__ import annotations

from pathlib import Path

import pytest
from policy_samples import BASE, edit

from shared.policy import PolicyError, load_policy, parse_policy, policy_path

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "release-policy.yaml"

CROSS_REGISTRY = edit("{namespace: prod/}", "{registry: prod}")


def test_the_sample_policy_loads() -> None:
    policy = load_policy(SAMPLE)
    delivery = policy.service("delivery")
    assert [env.name for env in delivery.environments] == ["qa", "prod"]
    assert delivery.registry["url"] == "https://127.0.0.1:5000"
    assert delivery.registry["auth"] == "anonymous"
    assert delivery.environments[0].secrets == {"local": {"environment": "qa"}}
    assert delivery.environments[1].gate is not None
    assert delivery.environments[1].promotion is not None
    assert delivery.accepts_tag("v1.4.2") == (True, "")
    assert delivery.accepts_tag("latest")[0] is False


def test_the_example_in_the_reference_loads() -> None:
    text = (ROOT / "docs" / "release-policy.md").read_text()
    example = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    delivery = parse_policy(example, "docs example").service("delivery")
    assert [env.name for env in delivery.environments] == ["qa", "prod"]
    assert delivery.accepts_tag("v1.5.0-rc.1") == (True, "")
    prod = delivery.production
    assert prod.gate is not None and prod.gate.escalation_group == "platform-leads"
    assert prod.promotion is not None and prod.promotion.acr_import is not None
    assert prod.image_repository == "prod/delivery"


def test_policy_path_defaults_to_the_app_root(tmp_path: Path) -> None:
    assert policy_path({}, tmp_path) == tmp_path / "release-policy.yaml"
    assert policy_path({"RELEASE_POLICY_FILE": ""}, tmp_path) == \
        tmp_path / "release-policy.yaml"


def test_policy_path_setting_is_relative_to_the_app_root_or_absolute(tmp_path: Path) -> None:
    assert policy_path({"RELEASE_POLICY_FILE": "config/p.yaml"}, tmp_path) == \
        tmp_path / "config" / "p.yaml"
    assert policy_path({"RELEASE_POLICY_FILE": "/etc/release/p.yaml"}, tmp_path) == \
        Path("/etc/release/p.yaml")


def test_policy_path_of_this_app_is_the_sample() -> None:
    assert policy_path({}) == SAMPLE


def test_a_missing_file_is_a_policy_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(PolicyError) as raised:
        load_policy(missing)
    assert str(raised.value) == f"{missing}: cannot read: No such file or directory"


def test_errors_name_the_path_as_given(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(edit("deadline: 72h", "deadline: 72x"))
    with pytest.raises(PolicyError, match=rf"^{path}:22: services\.delivery"):
        load_policy(path)


def test_service_for_repository() -> None:
    policy = parse_policy(BASE)
    assert policy.service_for_repository("delivery") is policy.service("delivery")
    assert policy.service_for_repository("billing") is None
    assert policy.service_for_repository("delivery", "myacr.azurecr.io") is not None
    assert policy.service_for_repository("delivery", "https://MyAcr.azurecr.io:443") is not None
    assert policy.service_for_repository("delivery", "prodacr.azurecr.io") is None


def test_repositories_in_a_promotion_namespace_are_promotion_targets() -> None:
    policy = parse_policy(BASE)
    assert policy.is_promotion_target("prod/delivery")
    assert policy.is_promotion_target("prod/anything/else")
    assert policy.service_for_repository("prod/delivery") is None
    assert not policy.is_promotion_target("delivery")
    assert not policy.is_promotion_target("production/delivery")
    assert not policy.is_promotion_target("prod/delivery", "prodacr.azurecr.io")


def test_a_cross_registry_target_is_recognised_by_its_registry() -> None:
    policy = parse_policy(CROSS_REGISTRY)
    assert policy.is_promotion_target("delivery", "prodacr.azurecr.io")
    assert policy.service_for_repository("delivery", "prodacr.azurecr.io") is None
    assert not policy.is_promotion_target("delivery", "myacr.azurecr.io")
    assert not policy.is_promotion_target("delivery")  # which registry? cannot tell
    assert policy.service_for_repository("delivery", "myacr.azurecr.io") is not None


def test_the_ingestion_rules_work_with_the_policy() -> None:
    from shared.ingest.decisions import decide
    from shared.ingest.payloads import RegistryEvent

    policy = parse_policy(BASE)
    digest = "sha256:" + "a" * 64

    def outcome(repository: str, tag: str) -> tuple[str, str]:
        event = RegistryEvent(event_id="e1", source="test", action="push",
                              registry="myacr.azurecr.io", repository=repository, tag=tag,
                              digest=digest)
        decision = decide(event, policy)
        return decision.outcome, decision.reason

    assert outcome("delivery", "1.2.3")[0] == "start"
    assert outcome("delivery", "0.1.0") == ("ignored", "version 0.1.0 is outside >=1.0.0")
    assert outcome("prod/delivery", "1.2.3")[0] == "ignored"
    assert outcome("billing", "1.2.3")[0] == "ignored"


def test_environment_lookup() -> None:
    delivery = parse_policy(BASE).service("delivery")
    assert delivery.environment("prod") is delivery.production
    with pytest.raises(KeyError):
        delivery.environment("staging")
