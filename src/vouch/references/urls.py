from django.urls import path

from vouch.references import views

urlpatterns = [
    path("candidates/", views.candidate_list, name="candidates"),
    path("candidates/new/", views.candidate_new, name="candidate_new"),
    path("candidates/<uuid:candidate_id>/", views.candidate_detail, name="candidate_detail"),
    path("candidates/<uuid:candidate_id>/edit/", views.candidate_edit, name="candidate_edit"),
    path("candidates/<uuid:candidate_id>/delete/", views.candidate_delete, name="candidate_delete"),
    path("candidates/<uuid:candidate_id>/attachments/", views.attachment_upload, name="attachment_upload"),
    path(
        "candidates/<uuid:candidate_id>/attachments/<uuid:attachment_id>/",
        views.attachment_download,
        name="attachment_download",
    ),
    path(
        "candidates/<uuid:candidate_id>/attachments/<uuid:attachment_id>/delete/",
        views.attachment_delete,
        name="attachment_delete",
    ),
]
