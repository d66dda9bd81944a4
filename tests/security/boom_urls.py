"""Vouch's URLs plus views that fail, for tests of what a server error logs."""

from django.urls import path

from vouch.urls import handler400, handler403, handler404, handler500
from vouch.urls import urlpatterns as vouch_urlpatterns


def boom(request, token):
    raise RuntimeError("kaboom")


urlpatterns = [path("boom/<str:token>/", boom), *vouch_urlpatterns]
__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]
