from django.urls import path

from vouch.references import questionnaire_views, views

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
    path("questionnaires/", questionnaire_views.questionnaire_list, name="questionnaires"),
    path("questionnaires/new/", questionnaire_views.questionnaire_new, name="questionnaire_new"),
    path(
        "questionnaires/<uuid:questionnaire_id>/", questionnaire_views.questionnaire_detail, name="questionnaire_detail"
    ),
    path(
        "questionnaires/<uuid:questionnaire_id>/edit/",
        questionnaire_views.questionnaire_edit,
        name="questionnaire_edit",
    ),
    path(
        "questionnaires/<uuid:questionnaire_id>/copy/",
        questionnaire_views.questionnaire_copy,
        name="questionnaire_copy",
    ),
    path(
        "questionnaires/<uuid:questionnaire_id>/archive/",
        questionnaire_views.questionnaire_archive,
        name="questionnaire_archive",
    ),
    path(
        "questionnaires/<uuid:questionnaire_id>/restore/",
        questionnaire_views.questionnaire_restore,
        name="questionnaire_restore",
    ),
]
