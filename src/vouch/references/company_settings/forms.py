"""The workflow settings form: what an admin may set, checked before anything is saved."""

from __future__ import annotations

import ipaddress

from django import forms

from vouch.core.text import SingleLineField
from vouch.references.request_models import MAX_REFEREES

MAX_REMINDERS = 5
MAX_REMINDER_DAY = 60


def parse_reminder_days(raw: str) -> list[int]:
    """ "2, 4, 6" -> [2, 4, 6]. Empty means no reminders. Raises ValidationError with a
    message saying what to change."""
    parts = [part.strip() for part in raw.replace(";", ",").split(",")]
    parts = [part for part in parts if part]
    if not parts:
        return []
    if len(parts) > MAX_REMINDERS:
        raise forms.ValidationError(f"Send at most {MAX_REMINDERS} reminders.", code="too_many")
    days = []
    for part in parts:
        if not part.isascii() or not part.isdigit() or len(part) > 3:
            raise forms.ValidationError(
                f"“{part[:10]}” is not a number of days: use whole numbers separated by commas, e.g. 2, 4, 6.",
                code="not_a_number",
            )
        days.append(int(part))
    if any(not 1 <= day <= MAX_REMINDER_DAY for day in days):
        raise forms.ValidationError(f"Each day must be between 1 and {MAX_REMINDER_DAY}.", code="out_of_range")
    if len(set(days)) != len(days):
        raise forms.ValidationError("Each day can appear only once.", code="duplicate")
    if days != sorted(days):
        raise forms.ValidationError("List the days in order, earliest first, e.g. 2, 4, 6.", code="order")
    return days


MAX_OFFICE_NETWORKS = 50
# Broader than this is not an office: it would lower the signals of half an internet provider.
MIN_PREFIX = {4: 16, 6: 32}


def parse_office_networks(raw: str) -> list[str]:
    """One CIDR a line (or separated by commas) -> the networks in canonical form, e.g.
    ["203.0.113.0/24", "2001:db8:1::/48"]. Raises ValidationError saying what to change."""
    parts = [part.strip() for part in raw.replace(",", "\n").splitlines()]
    parts = [part for part in parts if part]
    if len(parts) > MAX_OFFICE_NETWORKS:
        raise forms.ValidationError(f"List at most {MAX_OFFICE_NETWORKS} networks.", code="too_many")
    networks: list[str] = []
    for part in parts:
        shown = part[:45]
        if "/" not in part:
            raise forms.ValidationError(
                f"“{shown}” has no prefix length: write the network with it, e.g. 203.0.113.0/24 "
                "(a single address is /32).",
                code="no_prefix",
            )
        try:
            network = ipaddress.ip_network(part, strict=True)
        except ValueError as exc:
            try:
                loose = ipaddress.ip_network(part, strict=False)
            except ValueError:
                raise forms.ValidationError(
                    f"“{shown}” is not a network: write an address and its prefix length, e.g. 203.0.113.0/24 "
                    "or 2001:db8::/48.",
                    code="invalid",
                ) from exc
            raise forms.ValidationError(
                f"“{shown}” has bits set after its prefix: did you mean {loose}?", code="host_bits"
            ) from exc
        if network.prefixlen < MIN_PREFIX[network.version]:
            raise forms.ValidationError(
                f"“{shown}” is too broad for an office: use a prefix of /{MIN_PREFIX[network.version]} or longer.",
                code="too_broad",
            )
        if str(network) in networks:
            raise forms.ValidationError(f"“{network}” is listed twice.", code="duplicate")
        networks.append(str(network))
    return networks


class WorkflowSettingsForm(forms.Form):
    reminder_days = SingleLineField(
        max_length=40,
        required=False,
        label="Reminder days",
        help_text=(
            f"Days after a candidate or referee is sent their link on which they are reminded, separated by "
            f"commas (at most {MAX_REMINDERS}, each 1 to {MAX_REMINDER_DAY}). Reminders stop once they have "
            "acted, and at the deadline. Leave empty to send no reminders."
        ),
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off", "placeholder": "2, 4, 6"}),
    )
    replace_after_days = forms.IntegerField(
        min_value=1,
        max_value=90,
        label="Referees can be replaced after (days)",
        help_text="A candidate can replace a referee who has not answered this many days after being nominated.",
    )
    retention_months = forms.IntegerField(
        min_value=1,
        max_value=120,
        label="Keep closed requests for (months)",
        help_text=(
            "Completed, expired and cancelled requests are deleted this long after they closed, with their "
            "references, reports and files; a candidate with no request left is deleted too."
        ),
    )
    recruiters_see_all = forms.TypedChoiceField(
        choices=[
            ("all", "Recruiters see every request of the company"),
            ("own", "Recruiters see only the requests they created"),
        ],
        coerce=lambda value: value == "all",
        widget=forms.RadioSelect,
        label="Who sees which requests",
        help_text=(
            "Owners, admins and viewers always see every request. A recruiter limited to their own requests "
            "also reaches only the candidates of those requests and the candidates they added who have no "
            "request yet: the candidates, details and files of other members' requests are hidden from them. A "
            "candidate who has both their request and another member's is one record: the recruiter sees and "
            "edits it, and the change shows on the other request too."
        ),
    )
    default_deadline_days = forms.IntegerField(
        min_value=1,
        max_value=90,
        label="Default deadline (days)",
        help_text="A new request's deadline is this many days ahead unless the recruiter chooses another.",
    )
    default_referees = forms.IntegerField(
        min_value=1,
        max_value=MAX_REFEREES,
        label="Default number of referees",
        help_text=f"How many referees a new request asks for unless the recruiter chooses (1 to {MAX_REFEREES}).",
    )

    known_office_networks = forms.CharField(
        required=False,
        max_length=3000,
        label="Known office networks",
        help_text=(
            "Your offices' internet networks, one a line, as an address with its prefix length (e.g. "
            "203.0.113.0/24 or 2001:db8:1::/48). A candidate and a referee who share one of them are colleagues "
            "in an office: the fraud signals of a shared network are lowered one step there (never those of a "
            "shared device). Leave empty if you have none."
        ),
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off", "spellcheck": "false"}),
    )

    def clean_known_office_networks(self) -> list[str]:
        return parse_office_networks(self.cleaned_data.get("known_office_networks") or "")

    def clean_reminder_days(self) -> list[int]:
        return parse_reminder_days(self.cleaned_data.get("reminder_days") or "")

    @staticmethod
    def initial_from(settings) -> dict:
        return {
            "reminder_days": ", ".join(str(day) for day in settings.reminder_days),
            "replace_after_days": settings.replace_after_days,
            "retention_months": settings.retention_months,
            "recruiters_see_all": "all" if settings.recruiters_see_all else "own",
            "default_deadline_days": settings.default_deadline_days,
            "default_referees": settings.default_referees,
            "known_office_networks": "\n".join(settings.known_office_networks or []),
        }
