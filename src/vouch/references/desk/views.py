"""The member's email notices page. Thin: the form, then ``notices``."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render

from vouch.accounts.decorators import company_action
from vouch.accounts.policy import Action
from vouch.core.requests import CompanyRequest
from vouch.references.desk import notices
from vouch.references.request_models import NoticeDelivery, NoticeEvent


class PreferencesForm(forms.Form):
    """One choice per event: at once, in the daily digest, or never."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for event, label in NoticeEvent.choices:
            self.fields[event] = forms.ChoiceField(
                label=label, choices=NoticeDelivery.choices, widget=forms.RadioSelect
            )


# Notices go to the member who asked for a request: those who may ask choose them.
@company_action(Action.CREATE_REQUEST)
def notice_preferences(request: CompanyRequest) -> HttpResponse:
    user_id = request.membership.user_id
    form = PreferencesForm(request.POST or None, initial=notices.preferences(user_id))
    if request.method == "POST":
        if form.is_valid():
            notices.set_preferences(user_id, form.cleaned_data)
            messages.success(request, "Your email notices are saved.")
            return redirect("notice_preferences")
        return render(request, "references/desk/preferences.html", {"form": form}, status=400)
    return render(request, "references/desk/preferences.html", {"form": form})
