from django.urls import path

from vouch.shield import views

urlpatterns = [
    path("robots.txt", views.robots, name="robots"),
    path(views.HONEYTOKEN_PATH.lstrip("/"), views.honeytoken, name="honeytoken"),
    path("operator/security/", views.operator_security, name="operator_security"),
    path("operator/security/lift/", views.lift_block, name="operator_security_lift"),
]
