"""The one place that answers "may this member do this?" (P20, docs/security/promises.md#p20).

Every view asks here (through ``vouch.accounts.decorators.company_action``) and
every service function asks again, so a forgotten check in a view is not a hole.
Roles are ordered constants, as in Zulip: a higher role can do all a lower one can.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, TypeGuard

from django.core.exceptions import PermissionDenied
from django.db import models

if TYPE_CHECKING:
    from vouch.accounts.models import Membership


class Role(models.IntegerChoices):
    VIEWER = 10, "Viewer"
    RECRUITER = 20, "Recruiter"
    ADMIN = 30, "Admin"
    OWNER = 40, "Owner"


class Action(StrEnum):
    VIEW_DASHBOARD = "view_dashboard"
    VIEW_MEMBERS = "view_members"
    VIEW_REQUESTS = "view_requests"
    CREATE_REQUEST = "create_request"
    INVITE_MEMBER = "invite_member"
    CHANGE_ROLE = "change_role"
    DEACTIVATE_MEMBER = "deactivate_member"
    MANAGE_SETTINGS = "manage_settings"
    MANAGE_SECURITY = "manage_security"
    DELETE_COMPANY = "delete_company"
    VIEW_SECURITY_EVENTS = "view_security_events"
    VIEW_ACTIVITY = "view_activity"
    VIEW_CANDIDATES = "view_candidates"
    EDIT_CANDIDATES = "edit_candidates"
    DELETE_CANDIDATES = "delete_candidates"
    VIEW_QUESTIONNAIRES = "view_questionnaires"
    EDIT_QUESTIONNAIRES = "edit_questionnaires"
    CHANGE_REQUESTS = "change_requests"
    REVIEW_FLAGS = "review_flags"
    VIEW_REPORTS = "view_reports"
    EXPORT_CANDIDATE_DATA = "export_candidate_data"
    ERASE_CANDIDATE_DATA = "erase_candidate_data"
    MANAGE_WORKFLOW = "manage_workflow"
    END_MEMBER_SESSIONS = "end_member_sessions"
    MANAGE_WEBHOOKS = "manage_webhooks"
    MANAGE_API_KEYS = "manage_api_keys"


# The lowest role allowed each action. Adding an Action without a row here fails
# the policy tests, so nothing is allowed by omission.
MINIMUM_ROLE: dict[Action, Role] = {
    Action.VIEW_DASHBOARD: Role.VIEWER,
    Action.VIEW_MEMBERS: Role.VIEWER,
    Action.VIEW_REQUESTS: Role.VIEWER,
    Action.CREATE_REQUEST: Role.RECRUITER,
    Action.INVITE_MEMBER: Role.ADMIN,
    Action.CHANGE_ROLE: Role.ADMIN,
    Action.DEACTIVATE_MEMBER: Role.ADMIN,
    Action.MANAGE_SETTINGS: Role.ADMIN,
    Action.MANAGE_SECURITY: Role.OWNER,
    Action.DELETE_COMPANY: Role.OWNER,
    Action.VIEW_SECURITY_EVENTS: Role.ADMIN,
    # The company's own activity log names members and what they changed.
    Action.VIEW_ACTIVITY: Role.ADMIN,
    # Candidates and their files: everyone in the company reads them, recruiters add
    # and change them, and only admins and owners destroy them.
    Action.VIEW_CANDIDATES: Role.VIEWER,
    Action.EDIT_CANDIDATES: Role.RECRUITER,
    Action.DELETE_CANDIDATES: Role.ADMIN,
    # Questionnaire templates are company configuration: everyone reads them (and
    # sees what referees will be asked); recruiters, who send requests, create, edit
    # and archive them. Nothing is ever deleted: sent requests point at versions.
    Action.VIEW_QUESTIONNAIRES: Role.VIEWER,
    Action.EDIT_QUESTIONNAIRES: Role.RECRUITER,
    # Reference requests: everyone reads requests and reports (a recruiter only their
    # own when the company says so: see sees_request); recruiters create, cancel,
    # delete, resend and review fraud flags; a candidate's whole data leaves the
    # company (export) or is destroyed (erasure) only by an admin or owner, who also
    # set the workflow (reminders, retention, who sees what).
    Action.CHANGE_REQUESTS: Role.RECRUITER,
    Action.REVIEW_FLAGS: Role.RECRUITER,
    Action.VIEW_REPORTS: Role.VIEWER,
    Action.EXPORT_CANDIDATE_DATA: Role.ADMIN,
    Action.ERASE_CANDIDATE_DATA: Role.ADMIN,
    Action.MANAGE_WORKFLOW: Role.ADMIN,
    # Signing a member out everywhere (a lost laptop, a suspected takeover): admins and
    # owners, for members not above them (see can_end_sessions).
    Action.END_MEMBER_SESSIONS: Role.ADMIN,
    # Webhook endpoints send the company's events out and hold signing secrets: admins
    # and owners, who configure the company's integrations.
    Action.MANAGE_WEBHOOKS: Role.ADMIN,
    # API keys (vouch.api) and, with them, webhook endpoints: admins and owners; a key
    # never holds a scope its creator's role does not (vouch.api.keys.scopes).
    Action.MANAGE_API_KEYS: Role.ADMIN,
}


# Operators (``User.is_staff``) belong to no company: they act in one only through a
# support grant its owner approved (P15). vouch.support sets this in its AppConfig.ready()
# to whether the grant behind an operator's membership allows an action now. Unset: never.
support_allows: Callable[[Membership, Action], bool] | None = None


def can(membership: Membership | None, action: Action) -> TypeGuard[Membership]:
    """Whether an active membership allows ``action`` in its company (True: it is a membership)."""
    if membership is None or not membership.is_active or not membership.user.is_active:
        return False
    if membership.user.is_staff:
        return support_allows is not None and support_allows(membership, action)
    return membership.role >= MINIMUM_ROLE[action]


def assignable_roles(membership: Membership | None) -> list[Role]:
    """Roles this member may give others: owners any, admins up to admin (not ownership)."""
    if not can(membership, Action.CHANGE_ROLE):
        return []
    ceiling = Role.OWNER if membership.role == Role.OWNER else Role.ADMIN
    return [role for role in Role if role <= ceiling]


def can_assign(membership: Membership | None, role: int) -> bool:
    return role in assignable_roles(membership)


def can_manage(actor: Membership | None, target: Membership, action: Action) -> bool:
    """Whether ``actor`` may change ``target``'s role or deactivate them.

    Only within the same company; never oneself (ask another admin, so nobody locks
    themselves out by a slip); and an admin cannot touch an owner."""
    if actor is None or not can(actor, action):
        return False
    if actor.company_id != target.company_id or actor.pk == target.pk:
        return False
    return not (target.role == Role.OWNER and actor.role != Role.OWNER)


def can_end_sessions(actor: Membership | None, target: Membership) -> bool:
    """Whether ``actor`` may end every session of ``target``: as for role changes, only
    in the same company, never oneself (that is the sessions page, which keeps the
    current one), and an admin not an owner's."""
    return can_manage(actor, target, Action.END_MEMBER_SESSIONS)


def can_end_any_sessions(user) -> bool:
    """Operators (``User.is_staff``) may end the sessions of any account: they run the
    installation, and a takeover may need stopping before anyone in a company is around.
    Ending sessions shows no company's data (P15)."""
    return bool(user is not None and user.is_authenticated and user.is_active and user.is_staff)


def sees_all_requests(membership: Membership | None, recruiters_see_all: bool) -> bool:
    """Whether the member sees every request of the company, or only their own: a
    company can limit recruiters to the requests they created (viewers, who change
    nothing, and admins and owners always see all)."""
    if not can(membership, Action.VIEW_REQUESTS):
        return False
    return membership.role != Role.RECRUITER or recruiters_see_all


def sees_request(membership: Membership | None, created_by_id: int | None, recruiters_see_all: bool) -> bool:
    """Whether the member may see one request (created by ``created_by_id``)."""
    if sees_all_requests(membership, recruiters_see_all):
        return True
    return can(membership, Action.VIEW_REQUESTS) and created_by_id == membership.user_id


def require(allowed: bool) -> None:
    """Raise PermissionDenied (403) unless ``allowed``."""
    if not allowed:
        raise PermissionDenied
