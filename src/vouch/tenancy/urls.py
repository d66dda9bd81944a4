from django.urls import path

from vouch.tenancy import views

urlpatterns = [
    path("company/settings/", views.company_settings, name="company_settings"),
    path("company/delete/", views.company_delete, name="company_delete"),
    path("company/delete/cancel/", views.company_delete_cancel, name="company_delete_cancel"),
]
