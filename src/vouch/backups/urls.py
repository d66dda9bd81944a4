from django.urls import path

from vouch.backups import views

urlpatterns = [
    path("operator/backups/", views.operator_backups, name="operator_backups"),
]
