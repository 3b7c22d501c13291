"""What every secret source offers: `get`, `secret` and `invalidate`."""

from __future__ import annotations

from abc import ABC, abstractmethod

from .errors import Secret


class SecretSource(ABC):
    """Where one environment's secrets come from. Safe to share between threads."""

    #: Names the source in messages, e.g. `Key Vault https://qa-kv.vault.azure.net`.
    description: str

    def get(self, name: str) -> str:
        """The value of secret `name`; raises a SecretError subclass naming source and secret."""
        return self.secret(name).reveal()

    @abstractmethod
    def secret(self, name: str) -> Secret:
        """Secret `name` wrapped so that its text forms hide the value."""

    @abstractmethod
    def invalidate(self, name: str) -> None:
        """Forget any cached value of `name`, so the next read fetches it again.

        For a consumer whose credential from this source was just rejected (e.g. 401):
        invalidate, read once more, and give up if that one fails as well.
        """

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.description}>"
