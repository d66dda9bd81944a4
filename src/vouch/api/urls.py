from django.urls import URLPattern, URLResolver, path

from vouch.api import reference
from vouch.api.keys import views as key_views
from vouch.api.v1 import api

# Under /api/ (vouch.urls tries these early: an API client calls far more often than
# a person opens a page, and nothing else starts with api/).
api_patterns: list[URLPattern | URLResolver] = [
    path("v1/", api.urls),
    path("v1/reference/", reference.page, name="api_reference"),
]

urlpatterns = [
    path("company/api-keys/", key_views.keys, name="api_keys"),
    path("company/api-keys/new/", key_views.create, name="api_key_create"),
    path("company/api-keys/<uuid:key_id>/revoke/", key_views.revoke, name="api_key_revoke"),
]
