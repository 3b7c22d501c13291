"""Secrets from app settings / environment variables: the embedded default without Azure.

Used by `make run` and by developers without a vault. Secret `name` of environment `env`
is the setting `SECRETS__<ENV>__<NAME>` (see `names.py`), read at every call so settings
loaded after start-up count. Nothing is cached, so `invalidate` has nothing to do.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from shared.config_sources import is_key_vault_reference

from .base import SecretSource
from .errors import Secret, SecretNotFound
from .names import check_environment_name, check_secret_name, local_setting_name


class LocalSource(SecretSource):
    """Reads the secrets of one environment from app settings."""

    def __init__(
        self,
        environment: str,
        environ: Mapping[str, str] | Callable[[], Mapping[str, str]] | None = None,
    ) -> None:
        """`environ` is a mapping, or a callable returning one; `os.environ` by default."""
        self.environment = check_environment_name(environment)
        self.description = f"local settings of environment {environment}"
        self._environ = environ

    def secret(self, name: str) -> Secret:
        check_secret_name(name)
        setting = local_setting_name(self.environment, name)
        environ = self._settings()
        value = environ.get(setting)
        if value is None:
            # Setting names are case-sensitive on Linux; accept a differently cased one too.
            value = next((v for k, v in environ.items() if k.upper() == setting), None)
        if value is None or not value.strip():
            raise SecretNotFound(self.description, name, f"app setting {setting} is not set")
        if is_key_vault_reference(value):
            raise SecretNotFound(self.description, name, f"app setting {setting} holds an "
                                 "unresolved Key Vault reference instead of a value")
        return Secret(name, value, self.description)

    def invalidate(self, name: str) -> None:
        check_secret_name(name)

    def _settings(self) -> Mapping[str, str]:
        if self._environ is None:
            return os.environ
        if callable(self._environ):
            return self._environ()
        return self._environ
