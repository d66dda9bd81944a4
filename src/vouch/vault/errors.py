"""What can go wrong with keys and ciphertext, as exceptions callers can tell apart."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured


class KeyConfigurationError(ImproperlyConfigured):
    """The master keys cannot be used (missing, unreadable, too open, wrong): Vouch
    refuses to start rather than run without them or with keys others can read."""


class VaultError(RuntimeError):
    """Base of the errors raised while sealing or opening company data."""


class DecryptionError(VaultError):
    """A value or file did not authenticate: tampered with, truncated, or copied from
    another row, column, table, file or company. Never returned as data."""


class KeyUnavailable(VaultError):
    """The company's data key does not exist (any more): its data can no longer be read.
    After a company is deleted this is what crypto-shredding looks like."""
