from django.urls import path

from vouch.access import views

urlpatterns = [
    path("members/", views.member_list, name="members"),
    path("members/invite/", views.invite, name="member_invite"),
    path("members/<int:membership_id>/role/", views.change_role, name="member_role"),
    path("members/<int:membership_id>/active/", views.set_active, name="member_active"),
    path("members/<int:membership_id>/sessions/end/", views.end_sessions, name="member_sessions_end"),
    path("invitations/<int:invitation_id>/revoke/", views.revoke_invitation, name="invitation_revoke"),
    path("invitations/accept/", views.invitation_accept, name="invitation_accept"),
    path("invitations/<str:token>/", views.invitation_open, name="invitation_open"),
    path("no-company/", views.no_company, name="no_company"),
]
