"""Which credential the Application Insights exporter signs in with: the app's managed
identity when ingestion takes Entra tokens only (`Authorization=AAD`), else none."""

from __future__ import annotations

from azure.identity import ManagedIdentityCredential

from shared.telemetry.pipelines import ingestion_credential


def test_entra_only_ingestion_uses_the_apps_managed_identity() -> None:
    assert isinstance(ingestion_credential("ClientId=5b1c0f6e-3a2d;Authorization=AAD"),
                      ManagedIdentityCredential)
    assert isinstance(ingestion_credential("Authorization=aad"), ManagedIdentityCredential)


def test_without_entra_authentication_the_connection_string_is_enough() -> None:
    assert ingestion_credential(None) is None
    assert ingestion_credential("") is None
    assert ingestion_credential("Authorization=Key") is None
    assert ingestion_credential("ClientId=5b1c0f6e-3a2d") is None
