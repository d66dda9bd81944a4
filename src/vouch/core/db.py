"""The query tricks that are faster than the ORM, in one place and one style.

Django builds and compiles a queryset's SQL again on every evaluation; for the few
reads and writes every request makes, that was most of their cost. Two mechanisms
avoid it, and every hand-written query that is there for speed goes through one of
them (the SQL text of each stays with its app, which knows its models; this module
imports no Vouch app). docs/performance.md, "The tricks", lists their users.

- :class:`PreparedLookup` and :class:`PreparedRows`: a queryset compiled once per
  database engine, then run with new parameters (below).
- :class:`ComposedSQL`: a statement written by hand once per database engine, from
  the models' own table and column names quoted by the backend, every value a bound
  parameter (a compare-and-set UPDATE, a join the ORM cannot say as cheaply, a read
  that must not build a queryset).

DDL, PRAGMAs, provisioning, backups, advisory locks and health checks also send SQL by
hand, but not for speed; they stay where they are.

Prepared queries
----------------

One row, with its ``select_related`` rows, read by a key through SQL compiled once.

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
but does not document: tests/core/test_db_prepared.py compares its results with the
ORM's, field by field, so a Django upgrade that changes them fails there first.

:class:`PreparedRows` does the same for a ``values_list`` queryset with several rows
(and, if asked, a page of them: ``LIMIT``/``OFFSET`` bound as parameters), for lists
every signed-in page shows.

Composed statements
-------------------

:class:`ComposedSQL` is for what a queryset cannot say as cheaply. It leans on no
private API: only ``connection.ops.quote_name`` and ``Model._meta``; the parameters are
prepared by the caller as the ORM would (``get_db_prep_value``/``get_db_prep_save``).
tests/core/test_db_composed.py compares each statement's result with its ORM
equivalent."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar, cast

from django.db import connections
from django.db.models import Func, IntegerField, Model, QuerySet
from django.db.models.query import get_related_populators  # type: ignore[attr-defined]  # present in Django 5.2, missing from its stubs


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


_M = TypeVar("_M", bound=Model)


class PreparedLookup(Generic[_M]):
    """``PreparedLookup(lambda: Model.objects.select_related(...).only(...), "pk")``;
    then ``lookup.get(value, using=alias)`` is that queryset's ``.filter(pk=value)``
    first row, or None. ``build`` must give the same query every time."""

    def __init__(self, build: Callable[[], QuerySet[_M]], key: str = "pk", sentinel: Any = None) -> None:
        self._build = build
        self._key = key
        # A value no real key has, to find the key's place among the compiled parameters.
        self._sentinel = uuid.UUID(int=0x5E171E1) if sentinel is None else sentinel
        self._compiled: dict[str, _Compiled] = {}
        self._lock = threading.Lock()

    def _compile(self, connection) -> _Compiled:
        queryset = self._build().filter(**{self._key: self._sentinel})
        return _compile_instances(queryset, connection, self._key, self._sentinel)

    def get(self, value: Any, *, using: str) -> _M | None:
        compiled, connection = _cached(self._compiled, self._lock, self._compile, using)
        key_field = compiled.model._meta.pk if self._key == "pk" else compiled.model._meta.get_field(self._key)
        params = list(compiled.params)
        params[compiled.key_index] = key_field.get_db_prep_value(value, connection, prepared=False)
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            row = cursor.fetchone()
        if row is None:
            return None
        return cast(_M, _instance(compiled, row, connection, using))


def _compile_instances(queryset: QuerySet, connection, key: str, sentinel: Any) -> _Compiled:
    """``queryset``'s SQL for ``connection`` and how to build its rows' instances; its
    ``key_index`` is the place of ``sentinel`` (the parameter ``key``), which must sit
    among the parameters exactly once."""
    compiler = queryset.query.get_compiler(connection=connection)
    sql, params = compiler.as_sql()
    key_index, _ = _place_of(params, key, sentinel)
    klass_info, select = compiler.klass_info, compiler.select
    fields = klass_info["select_fields"]
    start, end = fields[0], fields[-1] + 1
    return _Compiled(
        sql=sql,
        params=tuple(params),
        key_index=key_index,
        model=klass_info["model"],
        init_list=[column[0].target.attname for column in select[start:end]],
        start=start,
        end=end,
        klass_info=klass_info,
        select=select,
        converters=compiler.get_converters([column[0] for column in select[0 : compiler.col_count]]),
    )


def _instance(compiled: _Compiled, row: Any, connection, using: str) -> Model:
    """The model instance (with its ``select_related`` ones) of one row, as ``ModelIterable`` builds it."""
    if compiled.converters:
        row = _converted(row, compiled.converters, connection)
    instance = compiled.model.from_db(using, compiled.init_list, row[compiled.start : compiled.end])
    for populator in get_related_populators(compiled.klass_info, compiled.select, using):
        populator.populate(row, instance)
    return instance


def _cached(compiled: dict, lock: threading.Lock, compile_for: Callable, using: str) -> tuple[Any, Any]:
    """The compiled form for ``using``'s engine (compiled on first use), and its connection."""
    connection = connections[using]
    found = compiled.get(connection.vendor)
    if found is None:
        with lock:
            found = compiled.get(connection.vendor) or compile_for(connection)
            compiled[connection.vendor] = found
    return found, connection


def _place_of(params: list | tuple, name: str, sentinel: Any) -> tuple[int, Callable[[Any], Any]]:
    """Where ``sentinel`` sits among compiled parameters, and how to give a real value
    the form the driver got the sentinel in (a UUID is hex text on SQLite, a UUID on
    PostgreSQL; a bigint is an ``Int8`` on PostgreSQL; an aware datetime is naive UTC
    text on SQLite). It must sit there exactly once."""
    places = []
    for index, value in enumerate(params):
        if isinstance(value, type(sentinel)) and value == sentinel:
            # The driver's own subtype (psycopg's Int8 for a bigint) wraps the real value too.
            places.append((index, _same if type(value) is type(sentinel) else type(value)))
        elif isinstance(sentinel, uuid.UUID) and value == sentinel.hex:
            places.append((index, _uuid_hex))
        elif isinstance(sentinel, uuid.UUID) and value == str(sentinel):
            places.append((index, _uuid_text))
        elif isinstance(sentinel, datetime) and isinstance(value, str) and value == _datetime_text(sentinel):
            places.append((index, _datetime_text))
    if len(places) != 1:
        raise ValueError(f"the parameter {name!r} must appear exactly once in the query's parameters")
    return places[0]


def _same(value: Any) -> Any:
    return value


def _uuid_hex(value: Any) -> str:
    return (value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))).hex


def _uuid_text(value: Any) -> str:
    return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))


def _datetime_text(value: datetime) -> str:
    # As Django's SQLite backend adapts an aware datetime (its connection's time zone is
    # UTC with USE_TZ): a sentinel found this way proves the two agree.
    return str(value.astimezone(UTC).replace(tzinfo=None))


@dataclass(frozen=True)
class _CompiledRows:
    sql: str
    params: tuple
    places: dict[str, tuple[int, Callable[[Any], Any]]]
    converters: dict


class PreparedRows:
    """``PreparedRows(lambda creator: Model.objects.filter(created_by_id=creator)
    .order_by("-id").values_list("id", "name"), creator=-1)``; then
    ``rows.fetch(using=alias, creator=7)`` is that queryset's list of tuples for
    ``creator=7``, values converted as the ORM converts them.

    Each keyword names a parameter and gives its sentinel: a value no real row has,
    distinct from the others, which ``build`` puts in the query exactly once (ints,
    strings, UUIDs and aware datetimes). With ``paged=True``, ``fetch(limit=, offset=)`` reads one page
    (``LIMIT``/``OFFSET`` as bound parameters; ``build`` must not slice). ``build``
    must give the same query every time."""

    def __init__(self, build: Callable[..., QuerySet], *, paged: bool = False, **sentinels: Any) -> None:
        self._build = build
        self._paged = paged
        self._sentinels: Mapping[str, Any] = sentinels
        self._compiled: dict[str, _CompiledRows] = {}
        self._lock = threading.Lock()

    def _compile(self, connection) -> _CompiledRows:
        queryset = self._build(**self._sentinels)
        compiler = queryset.query.get_compiler(connection=connection)
        sql, params = compiler.as_sql()
        places = {name: _place_of(params, name, sentinel) for name, sentinel in self._sentinels.items()}
        if self._paged:
            sql = f"{sql} LIMIT %s OFFSET %s"
        columns = [column[0] for column in compiler.select[0 : compiler.col_count]]
        return _CompiledRows(sql=sql, params=tuple(params), places=places, converters=compiler.get_converters(columns))

    def fetch(self, *, using: str, limit: int | None = None, offset: int = 0, **values: Any) -> list[tuple]:
        compiled, connection = _cached(self._compiled, self._lock, self._compile, using)
        if values.keys() != compiled.places.keys():
            raise TypeError(f"give exactly these parameters: {sorted(compiled.places)}")
        params = list(compiled.params)
        for name, (index, render) in compiled.places.items():
            params[index] = render(values[name])
        if self._paged:
            if limit is None:
                raise TypeError("a paged read needs a limit")
            params += [int(limit), int(offset)]
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            rows = cursor.fetchall()
        if not compiled.converters:
            return [tuple(row) for row in rows]
        return [tuple(_converted(row, compiled.converters, connection)) for row in rows]


def count_rows() -> Func:
    """``COUNT(*)`` as a plain expression for ``values_list``, not an aggregate (with an
    aggregate Django adds a GROUP BY), and of rows, not of a column: SQLite counts a
    whole table from its b-tree at once (0.01 ms for 10,000 rows), but ``COUNT(id)``
    reads every row (1 ms)."""
    return Func(template="COUNT(*)", output_field=IntegerField())


def _converted(row, converters: dict, connection) -> list:
    """``row`` with each column through its converters, as the ORM's compiler applies them."""
    row = list(row)
    for position, (column_converters, expression) in converters.items():
        cell = row[position]
        for converter in column_converters:
            cell = converter(cell, expression, connection)
        row[position] = cell
    return row


# --- Composed statements ------------------------------------------------------------


class Names:
    """Table and column names from models' metadata, quoted by one backend: what a
    :class:`ComposedSQL` writes its statement with."""

    def __init__(self, connection) -> None:
        self.quote = connection.ops.quote_name

    def table(self, model: type[Model]) -> str:
        return self.quote(model._meta.db_table)

    def column(self, model: type[Model], field: str, *, prefix: str = "") -> str:
        """``field``'s column (``prefix``: a table alias, as in ``"m."``)."""
        return prefix + self.quote(model._meta.get_field(field).column)  # type: ignore[union-attr]  # a concrete field has a column

    def columns(self, model: type[Model], *fields: str, prefix: str = "") -> str:
        """The columns of ``fields``, comma-separated, in that order."""
        return ", ".join(self.column(model, field, prefix=prefix) for field in fields)


class ComposedSQL:
    """``ComposedSQL(lambda n: f"SELECT {n.columns(M, 'a', 'b')} FROM {n.table(M)} WHERE
    {n.column(M, 'id')} = %s")``; then ``statement.fetchone([value], using=alias)``.

    ``compose`` is called once per database engine (the quoting differs, the tables do
    not), with a :class:`Names` of that engine, and must put every value in a ``%s``
    parameter: identifiers only come from the models, quoted by the backend (the
    apps' ``S608`` waivers say so). The parameters are given ready for the driver."""

    def __init__(self, compose: Callable[[Names], str]) -> None:
        self._compose = compose
        self._sql: dict[str, str] = {}

    def sql(self, connection) -> str:
        """The statement for ``connection``'s engine (composed on first use)."""
        found = self._sql.get(connection.vendor)
        if found is None:
            # Two threads composing at once write the same text: no lock needed.
            found = self._sql[connection.vendor] = self._compose(Names(connection))
        return found

    def fetchone(self, params: list | tuple, *, using: str) -> tuple | None:
        connection = connections[using]
        with connection.cursor() as cursor:
            cursor.execute(self.sql(connection), params)
            return cursor.fetchone()

    def fetchall(self, params: list | tuple, *, using: str) -> list[tuple]:
        connection = connections[using]
        with connection.cursor() as cursor:
            cursor.execute(self.sql(connection), params)
            return cursor.fetchall()

    def execute(self, params: list | tuple, *, using: str) -> int:
        """Run a write; the number of rows it changed."""
        connection = connections[using]
        with connection.cursor() as cursor:
            cursor.execute(self.sql(connection), params)
            return cursor.rowcount

    def executemany(self, param_list: list, *, using: str) -> None:
        """Run a write once for each set of parameters, in one driver call (a batch of
        row updates without ``bulk_update``'s ``CASE`` per row and field)."""
        connection = connections[using]
        with connection.cursor() as cursor:
            cursor.executemany(self.sql(connection), param_list)
