from django.urls import path

from vouch.references.branding import views as branding_views
from vouch.references.candidates import views
from vouch.references.company_settings import views as settings_views
from vouch.references.desk import views as desk_views
from vouch.references.fraud import views as flag_views
from vouch.references.privacy import views as privacy_views
from vouch.references.questionnaires import views as questionnaire_views
from vouch.references.reports import views as report_views
from vouch.references.requests import views as request_views

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

# The reference-check workflow (member side).
urlpatterns += [
    path("requests/", request_views.request_list, name="requests"),
    path("requests/export.csv", request_views.request_export, name="requests_export"),
    path("notifications/", desk_views.notice_preferences, name="notice_preferences"),
    path("requests/new/", request_views.request_new, name="request_new"),
    path("requests/bulk/", request_views.request_bulk, name="request_bulk"),
    path("requests/bulk/<uuid:import_id>/", request_views.request_bulk_progress, name="request_bulk_progress"),
    path("requests/<uuid:request_id>/", request_views.request_detail, name="request_detail"),
    path("requests/<uuid:request_id>/cancel/", request_views.request_cancel, name="request_cancel"),
    path("requests/<uuid:request_id>/delete/", request_views.request_delete, name="request_delete"),
    path("requests/<uuid:request_id>/resend/", request_views.request_resend, name="request_resend"),
    path("requests/<uuid:request_id>/deadline/", request_views.request_deadline, name="request_deadline"),
    path(
        "requests/<uuid:request_id>/flags/<uuid:flag_id>/review/",
        flag_views.flag_review,
        name="flag_review",
    ),
    path(
        "requests/<uuid:request_id>/flags/review/",
        flag_views.flag_group_review,
        name="flag_group_review",
    ),
    path(
        "requests/<uuid:request_id>/referees/<uuid:reference_id>/flags/review/",
        flag_views.referee_flags_review,
        name="referee_flags_review",
    ),
    path("requests/<uuid:request_id>/report/", report_views.report, name="request_report"),
    path("requests/<uuid:request_id>/report.pdf", report_views.report_pdf, name="request_report_pdf"),
    path("candidates/<uuid:candidate_id>/export/", privacy_views.candidate_export, name="candidate_export"),
    path("candidates/<uuid:candidate_id>/erase/", privacy_views.candidate_erase, name="candidate_erase"),
    path("company/workflow/", settings_views.workflow_settings, name="workflow_settings"),
    path("company/branding/", branding_views.branding_settings, name="branding_settings"),
    path("company/branding/logo/remove/", branding_views.branding_logo_remove, name="branding_logo_remove"),
    path("company/branding/logo.png", branding_views.branding_logo, name="branding_logo"),
]
