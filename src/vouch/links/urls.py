"""Pages under a private link. vouch.urls mounts these at ``c/<str:token>/`` and
``r/<str:token>/``; every view here must be wrapped by ``link_required``."""

from django.urls import path

from vouch.links import views

candidate_patterns = [path("", views.candidate_start, name="candidate_link")]
referee_patterns = [path("", views.referee_start, name="referee_link")]
