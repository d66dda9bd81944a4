"""The pages a private link opens. Placeholders until the reference workflow fills
them: they show only that the link was recognised and which company sent it."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from vouch.links.decorators import link_required
from vouch.links.models import Purpose


@link_required(Purpose.CANDIDATE)
def candidate_start(request: HttpRequest) -> HttpResponse:
    return render(request, "links/candidate_start.html", {"company_name": request.link.company.name})


@link_required(Purpose.REFEREE)
def referee_start(request: HttpRequest) -> HttpResponse:
    return render(request, "links/referee_start.html", {"company_name": request.link.company.name})
