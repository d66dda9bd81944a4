"""Two-factor secrets sealed at rest, each bound to its user and authenticator.

allauth stores a TOTP secret (``data["secret"]``) and a recovery-code seed
(``data["seed"]``, or codes carried over from another library, ``data["migrated_codes"]``)
in ``Authenticator.data``, passing them through the MFA adapter's ``encrypt`` and
``decrypt``. Those hooks see only the text: ``encrypt`` runs before the authenticator
exists, ``decrypt`` without the row it was read from, so neither can bind a value to
its owner. The binding is therefore made on the model, where the row is known:

- ``encrypt`` only marks the text as a secret awaiting its row (``Pending``);
- just before an authenticator is saved (``pre_save``), every ``Pending`` value is
  sealed (``vouch.vault.account_secrets``) with the user's id, the authenticator's type
  and the field as associated data, so the plaintext never reaches the database;
- when an authenticator is loaded or saved, each sealed value is held as ``Bound``: the
  stored text, plus the binding taken from the row it was read from;
- ``decrypt`` opens a ``Bound`` value with its binding. A value copied from another
  user's row (or from another authenticator type) fails authentication: recorded as a
  ``data_integrity_fail`` event and refused (``SecretUnreadable``). So is a plain value
  written into the database behind Vouch's back: it was never sealed, and it is never
  sealed later either (only ``Pending`` values are), so it cannot be laundered by a save.

The row's id is not bound in: a new authenticator has none yet when it is saved, and
TOTP and recovery codes are unique per user and type (allauth's constraint
``unique_authenticator_type``), so user and type name the authenticator. WebAuthn
authenticators hold public keys and credential ids only (nothing that passes 2FA
when read), and are stored as allauth writes them.
"""

from __future__ import annotations

from allauth.mfa.models import Authenticator

from vouch.vault import account_secrets

# The fields of ``Authenticator.data`` holding secrets, per type; a list field holds
# one secret per item.
SECRET_FIELDS = {
    Authenticator.Type.TOTP: ("secret",),
    Authenticator.Type.RECOVERY_CODES: ("seed", "migrated_codes"),
}


class SecretUnreadable(account_secrets.UnreadableSecret):
    """A two-factor secret that does not open (recorded): the codes it would check are
    refused. Templates that ask for it (allauth's 2FA page counts recovery codes) show
    nothing instead of failing the page; sign-in shows a clear error (``vouch.guard.mfa``)."""

    silent_variable_failure = True

    @classmethod
    def of(cls, exc: account_secrets.UnreadableSecret) -> SecretUnreadable:
        return cls(exc.what, exc.reason, exc.event_id)


class Pending(str):
    """A secret from ``MFAAdapter.encrypt``, in memory, not yet sealed for its row."""

    __slots__ = ()


class Bound(str):
    """A sealed secret, with the binding of the row it belongs to."""

    binding: bytes
    what: str

    def __new__(cls, sealed: str, binding: bytes, what: str) -> Bound:
        value = super().__new__(cls, sealed)
        value.binding, value.what = binding, what
        return value

    def __reduce__(self):  # copies (deepcopy of a model instance) keep the binding
        return (Bound, (str(self), self.binding, self.what))


def binding(user_id, kind: str, field: str) -> bytes:
    return b"mfa\x00" + str(user_id).encode() + b"\x00" + str(kind).encode() + b"\x00" + field.encode()


def _describe(instance: Authenticator, field: str) -> str:
    return f"authenticator:{instance.pk or 'new'}:{instance.type}:{field} of user {instance.user_id}"


def _map(instance: Authenticator, change) -> None:
    """Apply ``change(value, binding, what)`` to each secret of ``instance.data``."""
    fields = SECRET_FIELDS.get(instance.type)
    data = instance.data
    if not fields or not isinstance(data, dict):
        return
    for field in fields:
        if field not in data:
            continue
        bound_to, what = binding(instance.user_id, instance.type, field), _describe(instance, field)
        value = data[field]
        if isinstance(value, list):
            data[field] = [change(item, bound_to, what) for item in value]
        else:
            data[field] = change(value, bound_to, what)


def _seal(value, bound_to: bytes, what: str):
    if isinstance(value, Pending):
        return Bound(account_secrets.seal(str(value), bound_to), bound_to, what)
    return value


class Unsealed(str):
    """A secret read from the database that Vouch never sealed (written behind its back)."""

    what: str

    def __new__(cls, value: str, what: str) -> Unsealed:
        text = super().__new__(cls, value)
        text.what = what
        return text

    def __reduce__(self):
        return (Unsealed, (str(self), self.what))


def _bind(value, bound_to: bytes, what: str):
    # A sealed value takes the binding of the row it is read from (never one it carries).
    if account_secrets.is_sealed(value):
        return Bound(str(value), bound_to, what)
    if isinstance(value, str) and not isinstance(value, Pending):
        return Unsealed(value, what)
    return value


def on_pre_save(sender, instance: Authenticator, **kwargs) -> None:
    _map(instance, _seal)


def on_post_init(sender, instance: Authenticator, **kwargs) -> None:
    _map(instance, _bind)


def on_post_save(sender, instance: Authenticator, **kwargs) -> None:
    # A new row now has its id: name it so in any later failure.
    _map(instance, _bind)


def connect() -> None:
    from django.db.models.signals import post_init, post_save, pre_save

    pre_save.connect(on_pre_save, sender=Authenticator, dispatch_uid="guard_mfa_seal")
    post_init.connect(on_post_init, sender=Authenticator, dispatch_uid="guard_mfa_bind")
    post_save.connect(on_post_save, sender=Authenticator, dispatch_uid="guard_mfa_rebind")


def encrypt(text: str) -> str:
    return Pending(text)


def decrypt(value: str) -> str:
    if isinstance(value, Bound):
        try:
            return account_secrets.open_sealed(str(value), value.binding, what=value.what)
        except account_secrets.UnreadableSecret as exc:
            raise SecretUnreadable.of(exc) from None
    if isinstance(value, Pending):
        return str(value)
    # Plain text written into the database, or a value read without its row: never used.
    what = value.what if isinstance(value, Unsealed) else "authenticator secret"
    try:
        account_secrets.integrity_failure(what, "not sealed by Vouch (plain text written into the database)")
    except account_secrets.UnreadableSecret as exc:
        raise SecretUnreadable.of(exc) from None


def seal_row(user_id, kind: str, data: dict, *, keys: account_secrets.AccountKeys) -> dict:
    """``data`` with its plain secrets sealed (the data migration; already sealed ones
    stay as they are)."""
    data = dict(data)
    for field in SECRET_FIELDS.get(kind, ()):
        if field not in data:
            continue
        bound_to = binding(user_id, kind, field)

        def one(value, bound_to=bound_to):
            if not isinstance(value, str) or account_secrets.is_sealed(value):
                return value
            return account_secrets.seal(value, bound_to, keys=keys)

        data[field] = [one(v) for v in data[field]] if isinstance(data[field], list) else one(data[field])
    return data


def open_row(user_id, kind: str, data: dict, *, keys: account_secrets.AccountKeys, what: str) -> dict:
    """``data`` with its sealed secrets opened (the data migration's reverse)."""
    data = dict(data)
    for field in SECRET_FIELDS.get(kind, ()):
        if field not in data:
            continue
        bound_to = binding(user_id, kind, field)

        def one(value, bound_to=bound_to):
            if not account_secrets.is_sealed(value):
                return value
            return account_secrets.open_sealed(value, bound_to, what=what, keys=keys)

        data[field] = [one(v) for v in data[field]] if isinstance(data[field], list) else one(data[field])
    return data


def census() -> dict[str, int]:
    """How many stored two-factor secrets are sealed and how many are plain (``vouch
    keys status``; a plain one was written behind Vouch's back, or predates sealing)."""
    counts = {"sealed": 0, "plain": 0}
    rows = Authenticator.objects.filter(type__in=list(SECRET_FIELDS)).values_list("type", "data")
    for kind, data in rows.iterator(chunk_size=2000):
        for field in SECRET_FIELDS[kind]:
            value = data.get(field) if isinstance(data, dict) else None
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, str):
                    counts["sealed" if account_secrets.is_sealed(item) else "plain"] += 1
    return counts
