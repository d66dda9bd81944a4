"""The authentication backend: allauth's, with the signed-in user read through SQL
compiled once.

Every signed-in request reads its user (``django.contrib.auth.get_user`` calls the
backend's ``get_user``). ModelBackend does it with ``.get(pk=...)``, building and
compiling the same query again on every request: about 8% of the requests
dashboard. Here the query is compiled once per database engine
(:class:`vouch.core.db.PreparedLookup`); the answer is ModelBackend's: the
user, or None when there is no such user or ``user_can_authenticate`` refuses it
(an inactive account). Signing in (``authenticate``) is allauth's, unchanged."""

from __future__ import annotations

from typing import Any

from allauth.account import auth_backends
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import router

from vouch.core.db import PreparedLookup

# The user as ModelBackend reads it (all columns, through the default manager);
# -1 stands for the key while compiling: no user has it, and it is the query's
# only parameter.
_user_by_pk = PreparedLookup(lambda: get_user_model()._default_manager.all(), "pk", sentinel=-1)


class AuthenticationBackend(auth_backends.AuthenticationBackend):
    def get_user(self, user_id: Any) -> AbstractBaseUser | None:
        user = _user_by_pk.get(user_id, using=router.db_for_read(get_user_model()))
        if user is None:
            return None
        return user if self.user_can_authenticate(user) else None
