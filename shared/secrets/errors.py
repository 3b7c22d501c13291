"""Typed errors of secret sources, and the wrapper that keeps a secret's value out of text.

Every message names where the secret was looked for (`Key Vault https://qa-kv.vault.azure.net`
or `local settings of environment qa`) and the secret's name, never its value.
"""

from __future__ import annotations

from typing import NoReturn

from shared.failure_kinds import Permanent


class SecretError(Exception):
    """A secret could not be read; `str()` says where, which secret and why."""

    def __init__(self, source: str, name: str, reason: str) -> None:
        self.source = source
        self.name = name
        self.reason = reason
        super().__init__(f"{source}: secret {name!r}: {reason}")


class SecretNotFound(Permanent, SecretError):
    """The secret (or its local setting) does not exist or holds no usable value."""


class SecretAccessDenied(Permanent, SecretError):
    """The vault refused the app's identity (401/403), or the secret is disabled."""


class SecretsUnavailable(SecretError):
    """The vault could not be reached or kept failing (429, 5xx, network, token acquisition).

    `retry_after` is the server's Retry-After in seconds, when it sent one.
    """

    def __init__(
        self, source: str, name: str, reason: str, *, retry_after: float | None = None
    ) -> None:
        super().__init__(source, name, reason)
        self.retry_after = retry_after


class InvalidSecretSpec(Permanent, ValueError):
    """An environment's secrets spec in the release policy is malformed; names the field."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class Secret:
    """A secret's value with the name and source it came from; text forms never show the value.

    `reveal()` returns the value: call it where the value is handed to the library that
    needs it, not earlier. Refuses to be pickled or copied, so it cannot slip into Durable
    state.
    """

    __slots__ = ("name", "source", "version", "_value")

    def __init__(self, name: str, value: str, source: str, version: str | None = None) -> None:
        self.name = name
        self.source = source
        self.version = version
        self._value = value

    def reveal(self) -> str:
        """The secret's value."""
        return self._value

    def __repr__(self) -> str:
        version = f", version={self.version!r}" if self.version else ""
        return f"Secret(name={self.name!r}, source={self.source!r}{version}, value=<hidden>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return (self.name, self.source, self.version, self._value) == (
            other.name, other.source, other.version, other._value)

    def __hash__(self) -> int:
        return hash((self.name, self.source, self.version))

    def __reduce__(self) -> NoReturn:
        raise TypeError(f"Secret {self.name!r} cannot be serialized; pass the secret's name and "
                        "resolve it where it is used")
