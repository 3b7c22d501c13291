"""Which activity failures the release retries: the error's class, through the marker the
activity boundary writes; an unmarked (older) text by the exception type it names."""

from datetime import timedelta
from pathlib import Path

import pytest

from activities.boundary import marks_failures
from devhost.app_loader import ACTIVITY_TRIGGER, load_app
from shared.approvals.keys import ApprovalConfigError
from shared.cluster.errors import (
    ClusterAuthError,
    ClusterError,
    ClusterForbidden,
    ClusterUnavailable,
    DeploymentNotFound,
    InvalidTarget,
)
from shared.failure_kinds import PERMANENT_MARK, TRANSIENT_MARK, Permanent, kind_of, unmarked
from shared.ledger.errors import LedgerError
from shared.registry.errors import (
    DigestMismatch,
    ImageNotFound,
    InvalidReference,
    RegistryError,
    RegistryRequestError,
    RegistryUnavailable,
    TagConflict,
    UnsupportedManifestError,
)
from shared.registry.manifests import UnsupportedManifest
from shared.releases.failures import is_permanent, retry_delay, said
from shared.secrets.errors import (
    InvalidSecretSpec,
    SecretAccessDenied,
    SecretNotFound,
    SecretsUnavailable,
)
from shared.secrets.names import InvalidSecretName


@pytest.mark.parametrize("text", [
    "Activity function 'promote_image' failed: TagConflict: registry r: prod/x:v1: already …",
    "Activity function 'promote_image' failed: ImageNotFound: registry r: x@sha256:…: not found",
    "Activity function 'deploy_image' failed: InvalidTarget: image must be pinned by digest",
    "Activity function 'snapshot_deployment' failed: ClusterForbidden: cluster c, namespace n",
    "Activity function 'snapshot_deployment' failed: SecretNotFound: local settings of qa",
    "Activity function 'deploy_image' failed: ValueError: target must be a JSON object",
    "Result: Failure Exception: DeploymentNotFound: cluster c, namespace n: deployment x",
])
def test_permanent_failures(text: str) -> None:
    assert is_permanent(text)


@pytest.mark.parametrize("text", [
    "Activity function 'promote_image' failed: RegistryUnavailable: registry r: still failing",
    "Activity function 'deploy_image' failed: ClusterError: deployment x kept changing under us",
    "Activity function 'await_rollout' failed: ClusterUnavailable: cannot reach the API server",
    "Activity function 'snapshot_deployment' failed: SecretsUnavailable: Key Vault …: HTTP 503",
    "Activity function 'x' failed: ConnectionResetError: [Errno 104] Connection reset by peer",
    "something without a type name",
    "a message that merely mentions ValueError without the colon",
])
def test_transient_failures(text: str) -> None:
    assert not is_permanent(text)


def test_backoff_doubles() -> None:
    assert [retry_delay(n) for n in (1, 2, 3)] == [timedelta(seconds=s) for s in (5, 10, 20)]

REPO = Path(__file__).resolve().parents[2]


# Marked at the activity boundary: the error's class decides, whatever its name --------------

def devhost_text(activity: str, error: BaseException) -> str:
    """The failure text devhost's engine writes into the history (as the Functions host does,
    after `Activity function '…' failed: `)."""
    return f"Activity function '{activity}' failed: {type(error).__name__}: {error}"


def failure_of(error: BaseException) -> BaseException:
    """`error` as it leaves an activity that wears `marks_failures`."""
    @marks_failures
    def activity(request: dict) -> dict:
        raise error

    with pytest.raises(type(error)) as raised:
        activity({})
    assert raised.value is error  # the same exception, its type and fields untouched
    return raised.value


PERMANENT_ERRORS = [
    TagConflict("r", "prod/x", "v1", "already points to sha256:9f2c"),
    ImageNotFound("r", "x", "sha256:41aa", "not found"),
    DigestMismatch("r", "x", "v1", "got another digest"),
    RegistryRequestError("r", "x", "v1", "HTTP 400"),
    UnsupportedManifestError("r", "x", "v1", "not a manifest"),
    UnsupportedManifest("unknown media type"),
    InvalidReference("bad tag"),
    ClusterAuthError("c", "n", "HTTP 401"),
    ClusterForbidden("c", "n", "HTTP 403"),
    DeploymentNotFound("c", "n", "deployment x"),
    InvalidTarget("image must be pinned by digest"),
    SecretNotFound("local settings of qa", "kubeconfig", "not set"),
    SecretAccessDenied("Key Vault https://kv", "kubeconfig", "HTTP 403"),
    InvalidSecretSpec("environments.qa.secrets", "must be an object"),
    InvalidSecretName("environments.qa.secrets.kubeconfig", "has a dot"),
    ApprovalConfigError("APPROVAL_BASE_URL", "APPROVAL_BASE_URL is not set"),
    ValueError("target must be a JSON object"),
    TypeError("request must be a dict"),
    KeyError("target"),
]
TRANSIENT_ERRORS = [
    RegistryUnavailable("r", "x", "v1", "still failing"),
    RegistryError("r", "x", "v1", "HTTP 502"),
    ClusterError("c", "n", "deployment x kept changing under us"),
    ClusterUnavailable("c", "n", "cannot reach the API server"),
    SecretsUnavailable("Key Vault https://kv", "kubeconfig", "HTTP 503"),
    RuntimeError("the turn changed hands 3 times"),
    LedgerError("table releases: HTTP 503"),
]


@pytest.mark.parametrize("error", PERMANENT_ERRORS, ids=lambda e: type(e).__name__)
def test_each_permanent_error_class_leaves_marked_permanent(error: BaseException) -> None:
    said_before = str(error)
    text = devhost_text("deploy_image", failure_of(error))
    assert kind_of(text) == "permanent" and is_permanent(text)
    assert PERMANENT_MARK in text
    assert unmarked(text) == f"Activity function 'deploy_image' failed: {type(error).__name__}:" \
        f" {said_before}"  # what the operator reads, as before the marker


@pytest.mark.parametrize("error", TRANSIENT_ERRORS, ids=lambda e: type(e).__name__)
def test_each_transient_error_class_leaves_marked_transient(error: BaseException) -> None:
    text = devhost_text("await_rollout", failure_of(error))
    assert kind_of(text) == "transient" and not is_permanent(text)
    assert TRANSIENT_MARK in text


def test_an_error_whose_text_is_not_its_arguments_is_left_as_it_was() -> None:
    error = failure_of(ConnectionResetError(104, "Connection reset by peer"))
    text = devhost_text("await_rollout", error)
    assert text.endswith("failed: ConnectionResetError: [Errno 104] Connection reset by peer")
    assert error.errno == 104 and kind_of(text) is None and not is_permanent(text)


def test_renaming_a_class_keeps_its_retry_behaviour() -> None:
    class PromotionRefused(TagConflict):  # a permanent error under a name the old table lacks
        pass

    class Throttled(Permanent, Exception):  # declared permanent, any name
        pass

    class TagConflictish(RuntimeError):  # a transient error named like a permanent one
        pass
    TagConflictish.__name__ = "TagConflict"

    refused = devhost_text("promote_image",
                           failure_of(PromotionRefused("r", "prod/x", "v1", "refused")))
    throttled = devhost_text("promote_image", failure_of(Throttled("HTTP 429, do not retry")))
    transient = devhost_text("promote_image", failure_of(TagConflictish("kept changing")))
    assert "failed: TagConflict: [transient] kept changing" in transient
    assert (is_permanent(refused), is_permanent(throttled), is_permanent(transient)) \
        == (True, True, False)
    # Unmarked, the same texts were decided by the names they show, the other way round.
    assert (is_permanent(unmarked(refused)), is_permanent(unmarked(throttled)),
            is_permanent(unmarked(transient))) == (False, False, True)


def test_a_subclass_may_say_it_is_worth_a_retry() -> None:
    class BusyRegistry(RegistryRequestError):
        retryable = True

    text = devhost_text("promote_image", failure_of(BusyRegistry("r", "x", "v1", "HTTP 429")))
    assert not is_permanent(text)


def test_an_old_text_without_a_marker_is_read_the_old_way() -> None:
    """A history recorded before the marker holds texts like these: they replay as they ran."""
    old_permanent = "Activity function 'promote_image' failed: TagConflict: registry r: already"
    old_transient = "Activity function 'promote_image' failed: RegistryUnavailable: registry r"
    assert kind_of(old_permanent) is None and kind_of(old_transient) is None
    assert is_permanent(old_permanent) and not is_permanent(old_transient)


def test_the_marker_is_read_where_the_host_puts_it_and_only_once() -> None:
    host = ("Result: Failure Exception: ValueError: [transient] quoting '[permanent] ' inside "
            "Stack: File x")
    assert kind_of(host) == "transient" and not is_permanent(host)
    assert unmarked(host) == ("Result: Failure Exception: ValueError: quoting '[permanent] ' "
                              "inside Stack: File x")
    twice = failure_of(failure_of(InvalidTarget("bad")))  # marked once, however many layers
    assert str(twice) == "[permanent] bad"
    assert not is_permanent("a reason that merely says [permanent] mid-sentence")


def test_the_reason_a_release_shows_carries_no_marker() -> None:
    error = failure_of(TagConflict("r", "prod/x", "v1", "already points\n to sha256:9f2c"))
    assert said(error) == "registry r: prod/x:v1: already points to sha256:9f2c"
    assert said(KeyError("target")) == "'target'"
    assert said(failure_of(KeyError("target"))) == "'target'"


def test_every_activity_of_the_app_marks_its_failures() -> None:
    def wears_it(function: object) -> bool:
        while function is not None:
            if getattr(function, "marks_failures", False):
                return True
            function = getattr(function, "__wrapped__", None)
        return False

    activities = load_app(REPO).of_trigger(ACTIVITY_TRIGGER)
    assert {"promote_image", "deploy_image", "claim_stage", "record_release"} \
        <= {a.name for a in activities}
    assert [a.name for a in activities if not wears_it(a.user_function)] == []
