"""URLs of suspicious-login protection (included by vouch.urls)."""

from django.urls import path

from vouch.guard import risk_views

urlpatterns = [
    path("accounts/verify-sign-in/", risk_views.step_up, name="guard_step_up"),
    path("accounts/not-me/<str:token>/", risk_views.not_me, name="guard_not_me"),
    path("members/suspended/", risk_views.suspended_members, name="guard_suspended_members"),
    path(
        "members/suspended/<int:membership_id>/approve/",
        risk_views.approve_restore,
        name="guard_approve_restore",
    ),
]
