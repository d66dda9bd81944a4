"""The candidate's pages, under their private link: confirm details, nominate referees,
follow their statuses, replace one. Being written."""

from __future__ import annotations

from django.http import Http404

from vouch.links.decorators import link_required
from vouch.links.models import Purpose


@link_required(Purpose.CANDIDATE)
def candidate_home(request):
    raise Http404


@link_required(Purpose.CANDIDATE)
def candidate_details(request):
    raise Http404


@link_required(Purpose.CANDIDATE)
def candidate_nominate(request):
    raise Http404


@link_required(Purpose.CANDIDATE)
def candidate_replace(request, reference_id):
    raise Http404
