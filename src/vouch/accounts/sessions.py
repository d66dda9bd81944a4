"""Django's database session store, with the one read every request makes written
as plain SQL.

Sessions stay exactly as server-side as with ``django.contrib.sessions.backends.db``:
same table, same expiry rule (a row past ``expire_date`` is not a session), and
logout still deletes the row. Only the lookup of a session by its key differs: the
ORM spent ~0.3 ms of Python per request building a one-row primary-key query, about
five times the query itself, and every signed-in page pays it.
"""

from __future__ import annotations

from django.contrib.sessions.backends import db
from django.db import connections, router
from django.utils import timezone

from vouch.core.db import ComposedSQL, Names


def _compose_select(n: Names) -> str:
    model = SessionStore.get_model_class()
    return (
        f"SELECT {n.column(model, 'session_data')} FROM {n.table(model)} "  # noqa: S608 (names from the model)
        f"WHERE {n.column(model, 'session_key')} = %s AND {n.column(model, 'expire_date')} > %s"
    )


# A live session's data by its key (vouch.core.db.ComposedSQL).
SELECT = ComposedSQL(_compose_select)


class SessionStore(db.SessionStore):
    def _get_session_from_db(self):
        if self.session_key is None:  # the ORM query would match nothing either
            return None
        model = self.model
        db_alias = router.db_for_read(model)
        now = connections[db_alias].ops.adapt_datetimefield_value(timezone.now())
        row = SELECT.fetchone([self.session_key, now], using=db_alias)
        if row is None:  # unknown or expired: as Django, forget the key (a new one is issued on save)
            self._session_key = None
            return None
        return model(session_key=self.session_key, session_data=row[0])
