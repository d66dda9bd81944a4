"""The emailed unlock link (vouch.guard.unlock), under /accounts/unlock/."""

from django.urls import path

from vouch.guard import unlock

urlpatterns = [
    path("<str:token>/", unlock.unlock_view, name="bruteforce_unlock"),
]
