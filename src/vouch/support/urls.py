from django.urls import path

from vouch.support import operator_views, views

urlpatterns = [
    path("operator/support/", operator_views.operator_support, name="support_operator"),
    path("operator/support/<uuid:grant_id>/open/", operator_views.operator_open, name="support_operator_open"),
    path("operator/support/leave/", operator_views.operator_leave, name="support_operator_leave"),
    path("company/support/", views.grants, name="support_grants"),
    path("company/support/<uuid:grant_id>/", views.review, name="support_review"),
    path("company/support/<uuid:grant_id>/revoke/", views.revoke, name="support_revoke"),
]
