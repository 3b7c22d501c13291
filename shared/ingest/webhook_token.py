"""The registry webhook's bearer token check (ingestion only).

The token is the app setting `REGISTRY_WEBHOOK_TOKEN` (in Azure a Key Vault
reference that App Service resolves); without it every delivery is refused.
"""

from __future__ import annotations

import hmac
import os
from typing import Any

TOKEN_SETTING = "REGISTRY_WEBHOOK_TOKEN"


def authorized(header: str | None, environ: Any = None) -> bool:
    """`Authorization: Bearer <REGISTRY_WEBHOOK_TOKEN>`, compared in constant time."""
    token = (environ if environ is not None else os.environ).get(TOKEN_SETTING, "")
    if not token or token.lower().startswith("@microsoft.keyvault("):
        return False
    expected = f"Bearer {token}".encode()
    return hmac.compare_digest((header or "").encode(), expected)
