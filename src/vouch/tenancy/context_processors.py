from __future__ import annotations

from django.http import HttpRequest


def company(request: HttpRequest) -> dict:
    return {
        "current_company": getattr(request, "company", None),
        "current_membership": getattr(request, "membership", None),
    }
