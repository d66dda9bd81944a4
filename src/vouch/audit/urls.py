from django.urls import path

from vouch.audit import views

urlpatterns = [
    path("security/events/", views.company_events, name="security_events"),
    path("operator/events/", views.operator_events, name="operator_events"),
]
