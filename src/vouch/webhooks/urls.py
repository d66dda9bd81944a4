from django.urls import path

from vouch.webhooks import views

urlpatterns = [
    path("company/webhooks/", views.endpoint_list, name="webhooks"),
    path("company/webhooks/new/", views.endpoint_new, name="webhook_new"),
    path("company/webhooks/<uuid:endpoint_id>/", views.endpoint_detail, name="webhook_detail"),
    path("company/webhooks/<uuid:endpoint_id>/rotate/", views.endpoint_rotate, name="webhook_rotate"),
    path("company/webhooks/<uuid:endpoint_id>/enabled/", views.endpoint_toggle, name="webhook_toggle"),
    path("company/webhooks/<uuid:endpoint_id>/delete/", views.endpoint_delete, name="webhook_delete"),
    path(
        "company/webhooks/<uuid:endpoint_id>/deliveries/<uuid:delivery_id>/replay/",
        views.delivery_replay,
        name="webhook_replay",
    ),
]
