"""One row, with its ``select_related`` rows, read by a key through SQL compiled once.

Django builds and compiles a queryset's SQL again on every evaluation. For the reads
every private-link page starts with, that was most of their cost: reading a referee's
reference with its request, candidate and questions took 0.67 ms, of which running
the SQL took 0.05 ms and building and compiling it 0.55 ms (`make bench`). A
:class:`PreparedLookup` compiles its query once per database engine, then each call
runs that SQL with the new key and builds the instances as Django's ``ModelIterable``
does: the same column converters (decryption stays lazy, in the vault's fields), the
same related objects, deferred columns loaded on first use, and every instance bound
to the database it was read from. Company databases of one engine share the SQL:
they have the same tables.

Written here because no maintained library does it for current Django (the one that
did, django-prepared-queries, stopped at Django 1.x). It leans on Django's compiler
(``select``, ``klass_info``, ``get_related_populators``), which Django keeps stable
but does not document: tests/tenancy/test_prepared.py compares its results with the
ORM's, field by field, so a Django upgrade that changes them fails there first."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connections
from django.db.models import Model, QuerySet
from django.db.models.query import get_related_populators


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple
    key_index: int
    model: type[Model]
    init_list: list[str]
    start: int
    end: int
    klass_info: dict
    select: list
    converters: dict


class PreparedLookup:
    """``PreparedLookup(lambda: Model.objects.select_related(...).only(...), "pk")``;
    then ``lookup.get(value, using=alias)`` is that queryset's ``.filter(pk=value)``
    first row, or None. ``build`` must give the same query every time."""

    def __init__(self, build: Callable[[], QuerySet], key: str = "pk", sentinel: Any = None) -> None:
        self._build = build
        self._key = key
        # A value no real key has, to find the key's place among the compiled parameters.
        self._sentinel = uuid.UUID(int=0x5E171E1) if sentinel is None else sentinel
        self._compiled: dict[str, _Compiled] = {}
        self._lock = threading.Lock()

    def _compile(self, connection) -> _Compiled:
        queryset = self._build().filter(**{self._key: self._sentinel})
        compiler = queryset.query.get_compiler(connection=connection)
        sql, params = compiler.as_sql()
        places = [i for i, value in enumerate(params) if _is_sentinel(value, self._sentinel)]
        if len(places) != 1:
            raise ValueError(f"the key {self._key!r} must appear exactly once in the query's parameters")
        klass_info, select = compiler.klass_info, compiler.select
        fields = klass_info["select_fields"]
        start, end = fields[0], fields[-1] + 1
        return _Compiled(
            sql=sql,
            params=tuple(params),
            key_index=places[0],
            model=klass_info["model"],
            init_list=[column[0].target.attname for column in select[start:end]],
            start=start,
            end=end,
            klass_info=klass_info,
            select=select,
            converters=compiler.get_converters([column[0] for column in select[0 : compiler.col_count]]),
        )

    def compiled(self, using: str) -> _Compiled:
        connection = connections[using]
        found = self._compiled.get(connection.vendor)
        if found is None:
            with self._lock:
                found = self._compiled.get(connection.vendor) or self._compile(connection)
                self._compiled[connection.vendor] = found
        return found

    def get(self, value: Any, *, using: str) -> Model | None:
        compiled = self.compiled(using)
        connection = connections[using]
        key_field = compiled.model._meta.pk if self._key == "pk" else compiled.model._meta.get_field(self._key)
        params = list(compiled.params)
        params[compiled.key_index] = key_field.get_db_prep_value(value, connection, prepared=False)
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            row = cursor.fetchone()
        if row is None:
            return None
        if compiled.converters:
            row = list(row)
            for position, (converters, expression) in compiled.converters.items():
                cell = row[position]
                for converter in converters:
                    cell = converter(cell, expression, connection)
                row[position] = cell
        instance = compiled.model.from_db(using, compiled.init_list, row[compiled.start : compiled.end])
        for populator in get_related_populators(compiled.klass_info, compiled.select, using):
            populator.populate(row, instance)
        return instance


def _is_sentinel(value: Any, sentinel: Any) -> bool:
    """Whether a compiled parameter is the sentinel key, as the database driver gets it
    (a UUID is hex text on SQLite, a UUID on PostgreSQL)."""
    if value == sentinel:
        return True
    if isinstance(sentinel, uuid.UUID):
        return value in (sentinel.hex, str(sentinel))
    return False
