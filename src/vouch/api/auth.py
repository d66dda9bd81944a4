"""The API's authentication as django-ninja sees it, and the scope check of each operation."""

from __future__ import annotations

from django.http import HttpRequest
from ninja.errors import HttpError
from ninja.security.http import HttpBearer


class KeyAuth(HttpBearer):
    """The key was checked by ``vouch.api.middleware`` (which also entered its company):
    here the caller is taken up, and the request made to look like its creator's (the
    key acts for them, within its scopes), so the member pages' access rules apply."""

    def __call__(self, request: HttpRequest):
        caller = getattr(request, "api_caller", None)
        if caller is None:
            return None
        request.user = caller.user
        request.membership = caller.membership  # type: ignore[attr-defined]
        request.company = caller.company  # type: ignore[attr-defined]
        return caller

    def authenticate(self, request: HttpRequest, token: str):  # pragma: no cover - __call__ decides
        return None


def need(request: HttpRequest, scope: str) -> None:
    caller = request.auth  # type: ignore[attr-defined]
    if not caller.has(scope):
        raise HttpError(403, f"This key does not have the {scope} scope.")
