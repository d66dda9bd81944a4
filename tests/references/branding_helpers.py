"""Logos for the branding tests: real images, and the hostile files a logo upload is
attacked with."""

from __future__ import annotations

import io
import zipfile

from PIL import Image, PngImagePlugin

from vouch.core.context import company_context
from vouch.references.branding import services as branding


def png(size: tuple[int, int] = (120, 40), colour: tuple[int, int, int] = (180, 30, 60), **save) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG", **save)
    return out.getvalue()


def image(image_format: str, size: tuple[int, int] = (120, 40), **save) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (20, 90, 160)).save(out, image_format, **save)
    return out.getvalue()


def png_with_text(key: str, text: str, size: tuple[int, int] = (120, 40)) -> bytes:
    """A valid PNG carrying ``text`` in a tEXt chunk (metadata Vouch must drop)."""
    info = PngImagePlugin.PngInfo()
    info.add_text(key, text)
    return png(size, pnginfo=info)


def decompression_bomb(size: tuple[int, int] = (20_000, 20_000)) -> bytes:
    """A small PNG (tens of KB) whose header claims ``size``: 400 megapixels once
    decoded by default, past Pillow's own limit; 5000 × 5000 is under Pillow's and over
    Vouch's."""
    out = io.BytesIO()
    Image.new("1", size, 0).save(out, "PNG", optimize=True)
    return out.getvalue()


def zip_polyglot() -> bytes:
    """A PNG followed by a zip holding a PHP file: valid as both."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("shell.php", "<?php system($_GET['c']); ?>")
    return png() + archive.getvalue()


PHP = b"<?php system($_GET['c']); ?>\n"
SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="100" height="40">'
    b'<script>alert(document.cookie)</script><rect width="100" height="40"/></svg>'
)


def set_logo(company, membership, data: bytes | None = None):
    """Give ``company`` a logo through the service, as its ``membership`` would."""
    with company_context(company):
        return branding.set_logo(membership, data or png())
