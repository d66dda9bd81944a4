"""Pages under a private link. vouch.urls mounts these at ``c/<str:token>/`` and
``r/<str:token>/``; every view here must be wrapped by ``link_required`` (the URL
matrices in tests/ check it)."""

from django.urls import path

from vouch.references.branding import views as branding_views
from vouch.references.candidates import link_views as candidate_views
from vouch.references.referees import views as referee_views

candidate_patterns = [
    path("", candidate_views.candidate_home, name="candidate_link"),
    path("details/", candidate_views.candidate_details, name="candidate_details"),
    path("nominate/", candidate_views.candidate_nominate, name="candidate_nominate"),
    path("replace/<uuid:reference_id>/", candidate_views.candidate_replace, name="candidate_replace"),
    path("logo.png", branding_views.candidate_logo, name="candidate_logo"),
]
referee_patterns = [
    path("", referee_views.referee_home, name="referee_link"),
    path("confirm/", referee_views.referee_confirm, name="referee_confirm"),
    path("answers/", referee_views.referee_answers, name="referee_answers"),
    path("decline/", referee_views.referee_decline, name="referee_decline"),
    path("logo.png", branding_views.referee_logo, name="referee_logo"),
]
