"""Encrypted model fields and blind indexes for company data.

A value is encrypted in ``pre_save`` (where the row is known) under the current
company's data key, bound to company, model, field and primary key (``vault.sealing``),
and decrypted when the attribute is first read (where the row is known again), then
kept in the instance. Models using them need a primary key that exists before the
insert (``UUIDField(primary_key=True, default=uuid.uuid4)``), so the binding holds
from the first write.

Fail-closed rules, enforced here:
- only ``save()``/``bulk_create()`` write ciphertext; ``update(field="x")`` and
  ``bulk_update`` with plaintext raise instead of storing it;
- an encrypted field cannot be filtered on (only ``isnull``); exact matches go through
  a ``BlindIndexField``;
- ``values()``/``values_list()`` give an opaque ``Sealed``, never ciphertext text.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid

from cryptography.exceptions import InvalidTag
from django import forms
from django.core import checks, validators
from django.core.exceptions import FieldError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models.expressions import Case, Col, Value, When
from django.db.models.functions import Cast
from django.db.models.lookups import Lookup
from django.db.models.query_utils import DeferredAttribute

from vouch.core.context import current
from vouch.vault import keyring, normalise, sealing
from vouch.vault.errors import VaultError


class Sealed:
    """Ciphertext read from or about to be written to the database. Deliberately not
    ``str`` or ``bytes``: it cannot end up on a page or in an export by accident."""

    __slots__ = ("data",)

    def __init__(self, data: bytes):
        self.data = data

    def __repr__(self) -> str:
        return f"<Sealed {len(self.data)} bytes>"

    def __str__(self) -> str:
        return "[encrypted]"

    def __eq__(self, other) -> bool:
        return isinstance(other, Sealed) and other.data == self.data

    def __hash__(self) -> int:
        return hash(self.data)


class DecryptingAttribute(DeferredAttribute):
    """Decrypts on first read, with the instance's primary key at hand; a data
    descriptor, so every read passes through it."""

    def __get__(self, instance, cls=None):
        if instance is None:
            return self
        try:
            value = instance.__dict__[self.field.attname]
        except KeyError:  # deferred: loaded from the database by Django
            value = super().__get__(instance, cls)
        if type(value) is Sealed:
            _open_row(instance)
            value = instance.__dict__[self.field.attname]
            if type(value) is Sealed:  # the quick way did not open it: the checked way
                value = self.field.unseal(instance, value)
                instance.__dict__[self.field.attname] = value
        return value

    def __set__(self, instance, value) -> None:
        instance.__dict__[self.field.attname] = value


_row_fields: dict[type, tuple] = {}


def _open_row(instance) -> None:
    """Decrypt every encrypted value of the row at once, on the first read of one.

    A list of a thousand rows reads thousands of values; context, keys and row binding
    are looked up once per row here instead of once per value (this took a 1,000-row
    list closer to the time of the same list in plaintext; see `make bench`). Only the
    usual case is handled: a value this cannot open stays sealed, and reading it goes
    through ``unseal``, which opens it or raises and records why."""
    fields = _row_fields.get(type(instance))
    if fields is None:
        fields = _row_fields[type(instance)] = tuple(
            (f.attname, f.location, isinstance(f, EncryptedTextField), f)
            for f in instance._meta.concrete_fields
            if isinstance(f, EncryptedField)
        )
    data = instance.__dict__
    keys = keyring.keys_for(current().company_id)
    ciphers, id_bytes = keys._ciphers, keys.id_bytes
    pk = instance.pk
    tail = b"\x00" + (pk.bytes if type(pk) is uuid.UUID else sealing.row_bytes(pk))
    for attname, location, is_text, field in fields:
        value = data.get(attname)
        if type(value) is not Sealed:
            continue
        sealed = value.data
        if len(sealed) < _MIN_SEALED or sealed[0] != _FORMAT:
            continue
        cipher = ciphers.get(int.from_bytes(sealed[1:_HEADER], "big"))
        if cipher is None:
            continue
        try:
            plaintext = cipher.decrypt(
                sealed[_HEADER:_BODY], sealed[_BODY:], sealed[:_HEADER] + id_bytes + location + tail
            )
        except InvalidTag:
            continue
        data[attname] = plaintext.decode() if is_text else field.decode(plaintext)


_FORMAT = sealing.FORMAT
_HEADER = sealing.HEADER_BYTES
_BODY = sealing.HEADER_BYTES + sealing.NONCE_BYTES
_MIN_SEALED = _BODY + sealing.TAG_BYTES


class SealedExact(Lookup):
    """``field__sealed=Sealed(...)``: compare stored ciphertext exactly (used by
    re-encryption, so a concurrent write is never overwritten)."""

    lookup_name = "sealed"
    prepare_rhs = False

    def get_db_prep_lookup(self, value, connection):
        # Through the field, as a write would store it (the driver knows no Sealed).
        return "%s", [self.lhs.output_field.get_db_prep_value(value, connection)]

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} = {rhs}", [*lhs_params, *rhs_params]


class EncryptedField(models.Field):
    descriptor_class = DecryptingAttribute
    _allowed_lookups = frozenset({"isnull", "sealed"})

    def get_internal_type(self) -> str:
        return "BinaryField"

    def contribute_to_class(self, cls, name, *args, **kwargs):
        super().contribute_to_class(cls, name, *args, **kwargs)
        self.location = f"{cls._meta.label_lower}\x00{self.name}".encode()

    def check(self, **kwargs):
        errors = super().check(**kwargs)
        pk = self.model._meta.pk
        if pk is None or not pk.has_default() or isinstance(pk, models.AutoField):
            errors.append(
                checks.Error(
                    f"{self.model._meta.label} has encrypted fields, so its primary key must be set before "
                    "the insert (UUIDField(primary_key=True, default=uuid.uuid4)); ciphertext is bound to it.",
                    obj=self,
                    id="vault.E001",
                )
            )
        if self.db_index or self.unique:
            errors.append(
                checks.Error("Encrypted fields cannot be indexed; add a BlindIndexField.", obj=self, id="vault.E002")
            )
        return errors

    # Subclasses turn Python values into bytes and back.
    def encode(self, value) -> bytes:
        raise NotImplementedError

    def decode(self, data: bytes):
        raise NotImplementedError

    def _what(self, pk) -> str:
        return f"{self.model._meta.label_lower}.{self.name}:{pk}"

    def seal_for(self, instance, value) -> Sealed | None:
        """The ciphertext of ``value`` as ``instance``'s value of this field."""
        if value is None:
            return None
        if instance.pk is None:
            raise VaultError(f"{self._what(instance.pk)}: encrypted values need the row's primary key before saving")
        return Sealed(sealing.seal_value(current().company_id, self.encode(value), self.location, instance.pk))

    def unseal(self, instance, sealed: Sealed):
        return self.open(sealed, instance.pk)

    def open(self, sealed: Sealed | None, pk):
        """The value of this field in row ``pk``, from its ciphertext: for values read
        without their instance (``values_list``), which stay ``Sealed`` until opened here."""
        if sealed is None:
            return None
        # The description is built only if the value fails to open: this runs for every
        # value on a page, where a few hundred nanoseconds per value add up.
        plaintext = sealing.open_value(
            current().company_id, sealed.data, self.location, pk, what=lambda: self._what(pk)
        )
        return self.decode(plaintext)

    def pre_save(self, model_instance, add):
        return self.seal_for(model_instance, getattr(model_instance, self.attname))

    def from_db_value(self, value, expression, connection):
        if value is None:
            return None
        return Sealed(value if type(value) is bytes else bytes(value))

    def get_prep_value(self, value):
        return value

    def get_db_prep_value(self, value, connection, prepared=False):
        if value is None:
            return None
        if type(value) is not Sealed:
            raise VaultError(
                f"{self.model._meta.label}.{self.name} is encrypted: write it with save() or bulk_create(), "
                "and find rows by its blind index."
            )
        return connection.Database.Binary(value.data)

    def get_db_prep_save(self, value, connection):
        # Django hands SQL expressions in update() straight to the database, past
        # get_db_prep_value: update(notes=Value("x")), Concat(...) or F("plain_column")
        # would store plaintext. Only expressions that can only yield ciphertext pass.
        if hasattr(value, "as_sql"):
            if not _only_ciphertext(value):
                raise VaultError(
                    f"{self.model._meta.label}.{self.name} is encrypted: update() takes only Sealed values, "
                    f"not the SQL expression {value!r}."
                )
            return value
        return super().get_db_prep_save(value, connection)

    def get_lookup(self, lookup_name):
        if lookup_name not in self._allowed_lookups:
            raise FieldError(
                f"{self.model._meta.label}.{self.name} is encrypted and cannot be filtered with "
                f"'{lookup_name}'; use its blind index."
            )
        if lookup_name == "sealed":
            return SealedExact
        return super().get_lookup(lookup_name)

    def get_transform(self, lookup_name):
        raise FieldError(f"{self.model._meta.label}.{self.name} is encrypted; '{lookup_name}' cannot be applied.")

    def value_to_string(self, obj) -> str:
        value = self.value_from_object(obj)
        return "" if value is None else str(value)


def _only_ciphertext(expression) -> bool:
    """Whether every value ``expression`` can produce is ciphertext or NULL: another
    encrypted column (its binding makes it fail to open here), a Sealed value, or a
    value whose own output field is encrypted (and so refuses plaintext itself), as in
    the CASE that bulk_update() builds."""
    if isinstance(expression, Value):
        return (
            expression.value is None
            or type(expression.value) is Sealed
            or isinstance(expression._output_field_or_none, EncryptedField)  # type: ignore[attr-defined]  # Django's expressions have it; its stubs do not
        )
    if isinstance(expression, Col):
        return isinstance(expression.target, EncryptedField)
    if isinstance(expression, Cast):
        return all(_only_ciphertext(source) for source in expression.get_source_expressions())
    if isinstance(expression, Case):
        return all(_only_ciphertext(case.result) for case in expression.cases) and _only_ciphertext(expression.default)
    if isinstance(expression, When):
        return _only_ciphertext(expression.result)
    return False


class EncryptedTextField(EncryptedField):
    def encode(self, value) -> bytes:
        return str(value).encode()

    def decode(self, data: bytes) -> str:
        return data.decode()

    def to_python(self, value):
        return value if value is None or isinstance(value, str) else str(value)

    def formfield(self, **kwargs):
        defaults = {"max_length": self.max_length}
        if self.max_length is None:
            defaults["widget"] = forms.Textarea
        return super().formfield(**{**defaults, **kwargs})


class EncryptedCharField(EncryptedTextField):
    """Text with a maximum length checked by validation (the column itself is binary)."""

    def __init__(self, *args, max_length: int = 200, **kwargs):
        super().__init__(*args, max_length=max_length, **kwargs)  # type: ignore[misc]  # mypy assumes *args may hold max_length too
        self.validators.append(validators.MaxLengthValidator(max_length))


class EncryptedEmailField(EncryptedCharField):
    default_validators = [validators.validate_email]

    def __init__(self, *args, max_length: int = 254, **kwargs):
        super().__init__(*args, max_length=max_length, **kwargs)

    def formfield(self, **kwargs):
        return super().formfield(**{"form_class": forms.EmailField, **kwargs})


class EncryptedJSONField(EncryptedField):
    def encode(self, value) -> bytes:
        return json.dumps(value, cls=DjangoJSONEncoder, separators=(",", ":"), ensure_ascii=False).encode()

    def decode(self, data: bytes):
        return json.loads(data)

    def formfield(self, **kwargs):
        return super().formfield(**{"form_class": forms.JSONField, **kwargs})


class EncryptedBinaryField(EncryptedField):
    def encode(self, value) -> bytes:
        return bytes(value)

    def decode(self, data: bytes) -> bytes:
        return data


INDEX_HEX_CHARS = 32  # 128 bits of HMAC-SHA256: collisions are not a practical concern


def blind_index(kind: str, value: str | None, company_id: uuid.UUID | None = None) -> str | None:
    """The blind index of ``value`` normalised as ``kind`` (email, phone, name, text)
    under the company's index key. Equal kinds match across models, so a referee's
    email can be matched with a candidate's."""
    if value is None:
        return None
    normalised = normalise.NORMALISERS[kind](str(value))
    if not normalised:
        return None
    key = keyring.keys_for(company_id or current().company_id).index
    return hmac.digest(key, kind.encode() + b"\x00" + normalised.encode(), hashlib.sha256).hex()[:INDEX_HEX_CHARS]


class BlindIndexField(models.CharField):
    """Keyed HMAC of another (encrypted) field's normalised value, kept in step on save.
    ``Candidate.objects.filter(email_index=blind_index("email", typed))`` finds rows
    without decrypting them, and the column alone reveals nothing without the key."""

    def __init__(self, *args, source: str = "", kind: str = "text", **kwargs):
        if kind not in normalise.NORMALISERS:
            raise ValueError(f"unknown blind index kind {kind!r}")
        self.source, self.kind = source, kind
        kwargs.update(max_length=INDEX_HEX_CHARS, editable=False, null=True, blank=True)
        kwargs.setdefault("db_index", True)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        for key in ("max_length", "editable", "null", "blank"):
            kwargs.pop(key, None)
        kwargs.update(source=self.source, kind=self.kind)
        return name, path, args, kwargs

    def pre_save(self, model_instance, add):
        if not self.source:
            # No source field: the caller sets the index itself, from a value that is
            # not stored in the clear anywhere (an address's network, a device cookie).
            return getattr(model_instance, self.attname)
        value = blind_index(self.kind, getattr(model_instance, self.source))
        setattr(model_instance, self.attname, value)
        return value
