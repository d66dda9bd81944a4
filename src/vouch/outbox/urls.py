from django.urls import path

from vouch.outbox import views

urlpatterns = [
    path("", views.index, name="outbox"),
    path("<str:name>", views.detail, name="outbox_message"),
]
