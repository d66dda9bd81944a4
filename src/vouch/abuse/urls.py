from django.urls import path

from vouch.abuse import settings_page

urlpatterns = [
    path("company/security/unusual-use/", settings_page.save_thresholds, name="abuse_thresholds"),
]
