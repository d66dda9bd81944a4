"""The branding form: a logo (optional: leaving it empty keeps the current one) and the
accent colour, each checked before anything is saved."""

from __future__ import annotations

from django import forms
from django.template.defaultfilters import filesizeformat

from vouch.core.text import SingleLineField
from vouch.references.branding import colours, images


class BrandingForm(forms.Form):
    logo = forms.FileField(
        required=False,
        label="Logo",
        help_text=(
            f"A {images.ACCEPTED} image of at most {filesizeformat(images.MAX_BYTES)}. Vouch stores a PNG copy "
            f"without the file's metadata, scaled down to {images.MAX_SIDE} pixels a side if larger. Leave empty "
            "to keep the current logo."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": "image/png,image/jpeg,image/webp"}),
    )
    accent = SingleLineField(
        required=False,
        max_length=7,
        label="Accent colour",
        help_text=(
            "The colour of links and buttons on your candidates' and referees' pages and in their emails, as # "
            "and six hexadecimal digits (e.g. #1f5fbf). It must be dark enough to read at 4.5:1 on white "
            "(WCAG AA). Leave empty for Vouch's blue."
        ),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false", "placeholder": "#1f5fbf"}),
    )

    def clean_accent(self) -> str:
        try:
            return colours.parse_accent(self.cleaned_data.get("accent") or "")
        except colours.ColourRefused as refused:
            raise forms.ValidationError(str(refused), code="contrast") from refused

    def logo_bytes(self) -> bytes | None:
        """The uploaded file's bytes (at most one more than the limit, so an oversized
        file is refused without reading it all), or None when none was chosen."""
        upload = self.cleaned_data.get("logo")
        if not upload:
            return None
        if upload.size is not None and upload.size > images.MAX_BYTES:
            return upload.read(images.MAX_BYTES + 1)
        return upload.read()
