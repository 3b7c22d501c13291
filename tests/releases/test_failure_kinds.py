"""Which activity failures the release retries: the exception type named in the text decides."""

from datetime import timedelta

import pytest

from shared.releases.failures import is_permanent, retry_delay


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
