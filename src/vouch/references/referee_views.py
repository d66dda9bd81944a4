"""The referee's pages, under their private link: confirm identity, answer (saved as they
go), or decline; a thank-you page after. Being written."""

from __future__ import annotations

from django.http import Http404

from vouch.links.decorators import link_required
from vouch.links.models import Purpose


@link_required(Purpose.REFEREE)
def referee_home(request):
    raise Http404


@link_required(Purpose.REFEREE)
def referee_confirm(request):
    raise Http404


@link_required(Purpose.REFEREE)
def referee_answers(request):
    raise Http404


@link_required(Purpose.REFEREE)
def referee_decline(request):
    raise Http404
