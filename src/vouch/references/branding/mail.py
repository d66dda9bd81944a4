"""The company's brand in the emails to its candidates and referees: sent as
"<Company> via Vouch" (``sender``), the HTML part headed by the company's name (and
logo) in its accent colour, the logo attached inline (a ``cid:`` image inside a
multipart/related part, so no mail reader fetches anything from anywhere). The text
part has the name and no logo. Needs the company's context."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from email.mime.image import MIMEImage
from email.utils import make_msgid

from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe
from PIL import Image

from vouch.references.branding import sender as senders
from vouch.references.branding.services import Brand, brand_of, logo_png
from vouch.vault.errors import VaultError

log = logging.getLogger("vouch.references")

# The logo's height in the mail's header, in CSS pixels; its width follows, up to a cap.
LOGO_HEIGHT = 48
LOGO_MAX_WIDTH = 240
DEFAULT_ACCENT = "#1f5fbf"  # vouch.css's --brand


@dataclass(frozen=True)
class MailBrand:
    brand: Brand
    logo: bytes | None
    logo_cid: str  # without the angle brackets
    logo_width: int
    logo_height: int


def brand_for_mail(company) -> MailBrand:
    brand = brand_of(company)
    logo = None
    if brand.logo_version:
        try:
            logo = logo_png(brand.logo_version)
        except (OSError, VaultError):
            # The mail still goes, with the name only: it carries someone's private link.
            log.warning("references: the company logo could not be read for an email")
    if logo:
        try:
            logo = _for_mail(logo)
        except Exception:  # noqa: BLE001 - the mail carries a private link: it goes, with the name only
            log.warning("references: the company logo could not be made ready for an email")
            logo = None
    width, height = _logo_size(brand)
    cid = make_msgid("logo", domain="vouch.invalid")[1:-1] if logo else ""
    return MailBrand(brand, logo, cid, width, height)


def _for_mail(png: bytes) -> bytes:
    """The stored logo (up to 1024 pixels a side) made as small as the mail shows it, at
    twice the size for sharp screens: a few KB in every mail rather than up to 512."""
    with Image.open(io.BytesIO(png), formats=["PNG"]) as image:
        image.load()
        if image.width <= LOGO_MAX_WIDTH * 2 and image.height <= LOGO_HEIGHT * 2:
            return png
        image.thumbnail((LOGO_MAX_WIDTH * 2, LOGO_HEIGHT * 2), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        image.save(out, "PNG", optimize=True)
        return out.getvalue()


def _logo_size(brand: Brand) -> tuple[int, int]:
    if not brand.logo_width or not brand.logo_height:
        return 0, 0
    height = LOGO_HEIGHT
    width = round(brand.logo_width * height / brand.logo_height)
    if width > LOGO_MAX_WIDTH:
        width, height = LOGO_MAX_WIDTH, max(1, round(brand.logo_height * LOGO_MAX_WIDTH / brand.logo_width))
    return width, height


def sender_of(mail_brand: MailBrand | None, default_from: str) -> str:
    return senders.sender(mail_brand.brand.name, default_from) if mail_brand is not None else default_from


def wrap_html(mail_brand: MailBrand | None, html: str) -> str:
    """The HTML body, headed by the company's brand (unchanged without one). ``html`` is
    the already rendered (escaped) body."""
    if mail_brand is None:
        return html
    context = {
        "brand": mail_brand.brand,
        "accent": mail_brand.brand.accent or DEFAULT_ACCENT,
        "logo_cid": mail_brand.logo_cid,
        "logo_width": mail_brand.logo_width,
        "logo_height": mail_brand.logo_height,
        "body": mark_safe(html),  # noqa: S308 - rendered by Django's templates, escaped there
    }
    return render_to_string("references/email/_branded.html", context)


def attach_logo(message: EmailMultiAlternatives, mail_brand: MailBrand | None) -> None:
    """The logo as an inline part the HTML shows by its Content-ID."""
    if mail_brand is None or not mail_brand.logo:
        return
    image = MIMEImage(mail_brand.logo, "png")
    image.add_header("Content-ID", f"<{mail_brand.logo_cid}>")
    image.add_header("Content-Disposition", "inline", filename="logo.png")
    message.mixed_subtype = "related"
    message.attach(image)
