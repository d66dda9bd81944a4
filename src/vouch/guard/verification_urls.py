"""Email verification links go through vouch.guard.verification's throttle first."""

from django.urls import path

from vouch.guard import verification

urlpatterns = [path("", verification.confirm_email, name="account_confirm_email_throttled")]
