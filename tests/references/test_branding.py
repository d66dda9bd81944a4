"""Company branding (issue 20): the logo upload attacked with hostile files, the accent
colour's contrast rule, who may change either, the security events, the logo's address
(its headers; another company's logo is a 404 for members and links alike), and the
brand on the candidate's and referee's pages under the app's CSP."""

from __future__ import annotations

import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from tests.conftest import make_company
from tests.references import branding_helpers as logos
from tests.references.workflow import REFEREES, make_request, nominate
from vouch.accounts.policy import Role
from vouch.audit.models import EventAction, SecurityEvent
from vouch.core.context import company_context
from vouch.references.branding import colours, images
from vouch.references.branding.models import Branding

pytestmark = pytest.mark.django_db

URL = "/company/branding/"
LOGO_URL = "/company/branding/logo.png"


def upload(client, data: bytes, name: str = "logo.png", accent: str = "", content_type: str = "image/png"):
    return client.post(URL, {"logo": SimpleUploadedFile(name, data, content_type=content_type), "accent": accent})


def stored(company) -> Branding:
    with company_context(company):
        return Branding.for_reading()


def stored_logo(company) -> bytes:
    with company_context(company):
        row = Branding.for_reading()
        with row.logo.open("rb") as handle:
            return handle.read()


def events(company) -> list[SecurityEvent]:
    return list(SecurityEvent.objects.filter(company_id=company.pk, action=EventAction.COMPANY_BRANDING_CHANGED))


@pytest.fixture
def admin_client(client, members):
    client.force_login(members[Role.ADMIN].user)
    return client


# --- the logo upload, attacked ---------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("shell.png", logos.PHP, "is not a PNG, JPEG or WebP image"),
        ("logo.svg", logos.SVG, "is not a PNG, JPEG or WebP image"),
        ("logo.png", logos.SVG, "is not a PNG, JPEG or WebP image"),
        ("logo.gif", logos.image("GIF"), "is not a PNG, JPEG or WebP image"),
        ("logo.png", logos.png()[:-20], "but its contents are not one"),  # cut short
        ("logo.png", logos.png() + b"<?php system($_GET['c']); ?>", "has data after its end"),
        ("logo.png", logos.zip_polyglot(), "has data after its end"),
        ("logo.jpg", logos.image("JPEG") + b"<html><script>alert(1)</script></html>", "has data after its end"),
        ("logo.webp", logos.image("WEBP") + b"<?php ?>", "has data after its end"),
        ("bomb.png", logos.decompression_bomb(), "at most 4096 pixels a side"),
        ("wide.png", logos.decompression_bomb((5000, 5000)), "5000 × 5000 pixels"),
        ("huge.png", b"\x89PNG" + b"\x00" * (images.MAX_BYTES + 10), "a logo can be at most 512.0\xa0KB"),
        ("dot.png", logos.png((4, 4)), "too small to show as a logo"),
        ("empty.png", b"", "The submitted file is empty"),
    ],
    ids=[
        "php-named-png",
        "svg-with-script",
        "svg-named-png",
        "gif",
        "truncated-png",
        "png-php-polyglot",
        "png-zip-polyglot",
        "jpeg-html-polyglot",
        "webp-trailing",
        "decompression-bomb",
        "over-vouch-limit",
        "oversized",
        "too-small",
        "empty",
    ],
)
def test_hostile_or_unfit_logos_are_refused_and_nothing_is_stored(admin_client, company, name, data, message):
    response = upload(admin_client, data, name=name)
    assert response.status_code == 400
    text = response.content.decode()
    assert message in text, text
    assert "Nothing was saved" in text
    assert not stored(company).logo.name
    assert not events(company)
    with company_context(company):
        files = list(Branding._meta.get_field("logo").storage.walk())
    assert not [f for f in files if f.startswith("branding/")], "no file is left behind"


def test_the_bomb_is_refused_from_its_header_before_any_pixel_is_decoded(monkeypatch):
    bomb = logos.decompression_bomb()
    assert len(bomb) < images.MAX_BYTES  # small on disk: only its header says otherwise
    decoded = []
    original = Image.Image.load
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(self.size) or original(self))
    with pytest.raises(images.LogoRefused, match="at most 4096 pixels a side"):
        images.clean_logo(bomb)
    assert not [size for size in decoded if size == (20_000, 20_000)]


def test_a_good_logo_is_stored_as_a_fresh_png_without_metadata(admin_client, company, members):
    payload = "<script>alert('metadata')</script>"
    response = upload(admin_client, logos.png_with_text("Comment", payload, size=(2000, 500)), accent="#0b5394")
    assert response.status_code == 302 and response["Location"] == URL
    row = stored(company)
    assert (row.logo_width, row.logo_height) == (1024, 256)  # scaled to the longest side's cap
    assert row.accent == "#0b5394"
    png = stored_logo(company)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and row.logo_size == len(png)
    assert b"alert" not in png and b"tEXt" not in png and b"Comment" not in png
    with Image.open(io.BytesIO(png)) as back:
        assert back.format == "PNG" and back.size == (1024, 256) and not back.info.get("Comment")
    # At rest the file is ciphertext.
    with company_context(company):
        ciphertext = Branding._meta.get_field("logo").storage.ciphertext(row.logo.name).read()
    assert ciphertext[:4] == b"VCHF" and b"IHDR" not in ciphertext
    [first, second] = sorted(events(company), key=lambda event: event.seq)
    assert first.details["logo"] == "set" and first.actor_id == members[Role.ADMIN].user.pk
    assert second.details == {"accent_from": "default", "accent_to": "#0b5394"}
    assert "Branding saved." in admin_client.get(URL).content.decode()


def test_jpeg_metadata_is_dropped_and_webp_is_accepted(admin_client, company):
    exif = Image.Exif()
    exif[0x010E] = "<?php echo 'exif'; ?>"  # ImageDescription
    assert upload(admin_client, logos.image("JPEG", exif=exif.tobytes()), name="logo.jpg").status_code == 302
    assert b"exif" not in stored_logo(company)
    assert upload(admin_client, logos.image("WEBP"), name="logo.webp").status_code == 302
    assert stored_logo(company).startswith(b"\x89PNG")


def test_replacing_and_removing_the_logo_removes_the_old_files(admin_client, company):
    storage = Branding._meta.get_field("logo").storage
    upload(admin_client, logos.png())
    first = stored(company).logo.name
    upload(admin_client, logos.png(colour=(0, 0, 0)))
    second = stored(company).logo.name
    assert first != second
    with company_context(company):
        assert not storage.exists(first) and storage.exists(second)
    response = admin_client.post("/company/branding/logo/remove/")
    assert response.status_code == 302
    assert not stored(company).logo.name
    with company_context(company):
        assert not storage.exists(second)
    assert [event.details["logo"] for event in sorted(events(company), key=lambda e: e.seq)] == [
        "set",
        "set",
        "removed",
    ]
    page = admin_client.get(URL).content.decode()
    assert "Logo removed" in page and "No logo" in page
    # Removing again is harmless.
    admin_client.post("/company/branding/logo/remove/")
    assert "There was no logo to remove." in admin_client.get(URL).content.decode()


# --- the accent colour -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("#ffcc00", "too light"),  # yellow on white: 1.6:1
        ("#777777", "too light"),  # 4.48:1 on white, less on the pages' grey
        ("red", "is not a colour"),
        ("#12345", "is not a colour"),
        ("#1f5fbf;}body{", "at most 7 characters"),
        ("#gggggg", "is not a colour"),
    ],
)
def test_unreadable_or_malformed_colours_are_refused(admin_client, company, value, message):
    response = admin_client.post(URL, {"accent": value})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert stored(company).accent == ""


def test_the_contrast_message_suggests_a_darker_shade_that_passes():
    with pytest.raises(colours.ColourRefused) as refused:
        colours.parse_accent("#ff8800")
    suggestion = re.search(r"for example (#[0-9a-f]{6})", str(refused.value)).group(1)
    assert "WCAG AA needs 4.5:1" in str(refused.value)
    assert colours.parse_accent(suggestion) == suggestion
    for background in colours.BACKGROUNDS:
        assert colours.contrast(suggestion, background) >= 4.5
    assert round(colours.contrast("#777777", "#ffffff"), 2) == 4.48
    assert colours.parse_accent(" 1F5FBF ") == "#1f5fbf"  # Vouch's own blue passes


def test_the_accent_can_be_cleared(admin_client, company):
    admin_client.post(URL, {"accent": "#0b5394"})
    assert admin_client.post(URL, {"accent": ""}).status_code == 302
    assert stored(company).accent == ""


# --- who may change it -------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.RECRUITER, Role.VIEWER])
def test_recruiters_and_viewers_cannot_change_the_branding(client, company, members, role):
    client.force_login(members[role].user)
    assert client.get(URL).status_code == 403
    assert upload(client, logos.png(), accent="#0b5394").status_code == 403
    assert client.post("/company/branding/logo/remove/").status_code == 403
    assert not stored(company).logo.name and stored(company).accent == ""


def test_owners_change_it_and_the_company_settings_page_links_here(client, company, members):
    client.force_login(members[Role.OWNER].user)
    assert f'href="{URL}"' in client.get("/company/settings/").content.decode()
    assert upload(client, logos.png(), accent="#0b5394").status_code == 302
    assert stored(company).logo.name


# --- the logo's address ------------------------------------------------------------------


def test_members_get_the_logo_with_safe_headers(client, company, members):
    logos.set_logo(company, members[Role.ADMIN])
    version = stored(company).logo_version
    client.force_login(members[Role.VIEWER].user)
    response = client.get(f"{LOGO_URL}?v={version}")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "private, max-age=31536000, immutable"
    assert response["Content-Disposition"] == 'inline; filename="logo.png"'
    assert response.content == stored_logo(company)
    assert client.get(LOGO_URL)["Cache-Control"] == "private, no-cache"
    # An old version's address is a 404: the browser never shows a replaced logo.
    assert client.get(f"{LOGO_URL}?v={'0' * 32}").status_code == 404
    client.logout()
    assert client.get(f"{LOGO_URL}?v={version}").status_code == 302  # to sign in


def test_another_companys_logo_is_a_404_for_members_and_links(client, company, members):
    logos.set_logo(company, members[Role.ADMIN])
    version = stored(company).logo_version
    _, token_a = make_request(company, members[Role.RECRUITER].user, email="a-cand@example.org")
    bravo = make_company("Bravo Corp")
    bravo_owner = bravo.memberships.get(role=Role.OWNER)
    _, token_b = make_request(bravo, bravo_owner.user, email="b-cand@example.org")
    client.force_login(bravo_owner.user)
    # Bravo's owner, asking for Acme's logo by its version, or for "the" logo: Bravo has none.
    assert client.get(f"{LOGO_URL}?v={version}").status_code == 404
    assert client.get(LOGO_URL).status_code == 404
    # Bravo's candidate link never leads to Acme's logo, whatever the version asked.
    for url in (f"/c/{token_b}/logo.png?v={version}", f"/c/{token_b}/logo.png"):
        response = client.get(url)
        assert response.status_code == 404 and response["Cache-Control"].startswith("max-age=0")
        assert not response.content.startswith(b"\x89PNG")
    # Acme's link, the token being the credential (Bravo's session changes nothing).
    response = client.get(f"/c/{token_a}/logo.png?v={version}")
    assert response.status_code == 200 and response.content == stored_logo(company)
    assert response["Content-Type"] == "image/png" and response["X-Content-Type-Options"] == "nosniff"
    assert "no-store" in response["Cache-Control"]  # the token is in the address
    # A guessed token: the neutral page.
    assert client.get(f"/c/{'x' * 43}/logo.png").status_code == 404


# --- the brand on the link pages ---------------------------------------------------------


def test_a_referee_page_shows_the_companys_name_logo_and_colour(client, company, members):
    logos.set_logo(company, members[Role.ADMIN])
    with company_context(company):
        from vouch.references.branding import services

        services.set_accent(members[Role.ADMIN], "#0b5394")
    version = stored(company).logo_version
    reference_request, _ = make_request(company, members[Role.RECRUITER].user)
    _, token = nominate(company, reference_request, REFEREES[0])
    response = client.get(f"/r/{token}/")
    assert response.status_code == 200
    html = response.content.decode()
    header = re.search(r'<header class="topbar link-brand">(.*?)</header>', html, re.S).group(1)
    assert '<span class="brand">Acme Hiring</span>' in header and "via Vouch" in header
    assert f'<img class="brand-logo" src="logo.png?v={version}"' in header
    assert token not in html  # the logo's address is relative: no token in the page
    # The colour, in a style the CSP allows by this response's nonce (and by nothing else).
    nonce = re.search(r'<style nonce="([^"]+)">:root \{ --brand:#0b5394; --focus:#0b5394; \}</style>', html).group(1)
    policy = response["Content-Security-Policy"]
    style_src = re.search(r"style-src ([^;]+)", policy).group(1).split()
    assert style_src == ["'self'", f"'nonce-{nonce}'"]
    assert "unsafe-inline" not in policy
    # A sibling page one level down finds the logo one level up.
    assert f'src="../logo.png?v={version}"' in client.get(f"/r/{token}/decline/").content.decode()
    # The logo the page names is served under the same link.
    assert client.get(f"/r/{token}/logo.png?v={version}").content == stored_logo(company)


def test_without_branding_the_link_pages_name_the_company_and_set_no_style(client, company, members):
    _, token = make_request(company, members[Role.RECRUITER].user)
    response = client.get(f"/c/{token}/")
    html = response.content.decode()
    assert '<span class="brand">Acme Hiring</span>' in html
    assert "<style" not in html and "brand-logo" not in html
    assert "nonce-" not in response["Content-Security-Policy"]


def test_the_neutral_page_of_a_refused_link_shows_no_company(client, company, members):
    logos.set_logo(company, members[Role.ADMIN])
    html = client.get(f"/c/{'y' * 43}/").content.decode()
    assert "Acme Hiring" not in html and "brand-logo" not in html
