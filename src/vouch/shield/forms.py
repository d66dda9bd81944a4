"""Forms that notice tampering (detection point ``form_tampering``) and carry a honeypot
(point ``honeytoken``).

A person using Vouch's pages posts every field the form drew (an empty text box is still
sent) and no other; a script posting by hand often leaves fields out or adds its own. A
form using ``TamperEvidentForm`` reports, once bound and cleaned:

- a field missing from the post whose widget a browser always sends (Django's
  ``value_omitted_from_data``: a checkbox left unticked or a multiple select with nothing
  chosen may be absent, a text box may not);
- a posted name the form never drew (besides the CSRF token and ``allow_extra``);
- its honeypot filled in: a text field no person sees (hidden by the stylesheet, out of the
  tab order, no autofill), which form-filling bots fill.

The request the form came in is ``current_request`` (set by the shield's middleware). The
form still validates as before: detection only counts against the source."""

from __future__ import annotations

import contextvars
from typing import Any

from django import forms
from django.forms.boundfield import BoundField
from django.http import HttpRequest

from vouch.shield import detection

HONEYPOT = "vouch_check"
ALWAYS_ALLOWED = frozenset({"csrfmiddlewaretoken"})

current_request: contextvars.ContextVar[HttpRequest | None] = contextvars.ContextVar(
    "vouch_shield_request", default=None
)


class _HoneypotBoundField(BoundField):
    def css_classes(self, extra_classes: Any = None) -> str:
        # "honeypot" hides it (vouch.css); assistive technology skips display:none too.
        return super().css_classes(extra_classes=f"honeypot {extra_classes or ''}".strip())


class _HoneypotField(forms.CharField):
    bound_field_class = _HoneypotBoundField


class TamperEvidentForm(forms.Form):
    allow_extra: frozenset[str] = frozenset()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields[HONEYPOT] = _HoneypotField(
            required=False,
            label="Leave this empty",
            widget=forms.TextInput(attrs={"tabindex": "-1", "autocomplete": "off"}),
        )

    def full_clean(self) -> None:
        super().full_clean()
        if hasattr(self, "cleaned_data"):
            self.cleaned_data.pop(HONEYPOT, None)  # views pass cleaned_data on as arguments
        if self.is_bound:
            request = current_request.get()
            if request is not None:
                self._check_posted(request)

    def _check_posted(self, request: HttpRequest) -> None:
        if self.data.get(self.add_prefix(HONEYPOT)):
            detection.detect(request, "honeytoken", detail=f"form field of {type(self).__name__}")
            return
        missing = [
            name
            for name, field in self.fields.items()
            if name != HONEYPOT
            and not field.disabled
            and field.widget.value_omitted_from_data(self.data, self.files, self.add_prefix(name))
        ]
        drawn = {self.add_prefix(name) for name in self.fields}
        extra = [
            key
            for key in self.data
            if key not in drawn
            and key not in ALWAYS_ALLOWED
            and key not in self.allow_extra
            and not any(key.startswith(f"{name}_") for name in drawn)  # a multi-widget's parts
        ]
        if missing or extra:
            detail = f"{type(self).__name__}: missing {sorted(missing)[:5]}, added {sorted(extra)[:5]}"
            detection.detect(request, "form_tampering", detail=detail)
