from django.urls import path

from vouch.web import event_views

urlpatterns = [
    path("security/events/", event_views.company_events, name="security_events"),
    path("operator/events/", event_views.operator_events, name="operator_events"),
]
