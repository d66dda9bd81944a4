"""The company logo, checked and made safe before it is stored.

A logo is shown to people outside the company (candidates, referees), in emails and
in the report PDF, so what is stored is never the uploaded file: the upload must
decode in full as a PNG, JPEG or WebP image (by its contents, whatever its name or
the browser says), and Vouch stores a PNG it drew itself from the decoded pixels.
What that drops: metadata (EXIF with a camera's location, text chunks, colour
profiles), animation frames after the first, and any bytes the decoder never looked
at, which is where a polyglot (an image that is also HTML, PHP or a zip) hides its
other self. PNG and JPEG uploads with data after their end are refused outright, as
attachments are (``file_contents``); a WebP's RIFF size must match the file.

Decompression bombs: the pixel size is read from the header and checked before any
pixel is decoded, and the upload's bytes are capped, so a small file claiming a huge
image costs nothing."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

from django.template.defaultfilters import filesizeformat
from PIL import Image, ImageOps, UnidentifiedImageError

from vouch.references.candidates import file_contents

log = logging.getLogger("vouch.references")

# The upload, and the PNG stored: a logo is a small picture.
MAX_BYTES = 512 * 1024
# The stored logo's longest side; larger uploads are scaled down to it.
MAX_SIDE = 1024
# What Vouch agrees to decode at all, read from the header first: 4096 × 4096 is
# 16 megapixels, 64 MB as RGBA in memory, for a few milliseconds.
MAX_SOURCE_SIDE = 4096
MAX_SOURCE_PIXELS = MAX_SOURCE_SIDE * MAX_SOURCE_SIDE
# The smallest logo worth showing.
MIN_SIDE = 16
FORMATS = ("PNG", "JPEG", "WEBP")
ACCEPTED = "PNG, JPEG or WebP"


class LogoRefused(ValueError):
    """The upload cannot be the logo; the message says why, for the person uploading."""


@dataclass(frozen=True)
class CleanLogo:
    png: bytes
    width: int
    height: int


def _not_an_image() -> LogoRefused:
    return LogoRefused(
        f"The file is not a {ACCEPTED} image. Save the logo in one of those formats and upload it again."
    )


def _check_whole(data: bytes, image_format: str) -> None:
    """Nothing after the image's end: PNG and JPEG by the attachments' own checks
    (``file_contents``, which also verify every PNG chunk's checksum); a WebP's RIFF
    header gives its exact length."""
    try:
        if image_format == "PNG":
            file_contents.check_png(data)
        elif image_format == "JPEG":
            file_contents.check_jpeg(data)
        elif int.from_bytes(data[4:8], "little") + 8 != len(data):
            raise file_contents.Unacceptable(file_contents.TRAILING.format(kind="image"))
    except file_contents.Unacceptable as refused:
        raise LogoRefused(str(refused).replace("is named like", "looks like")) from refused


def clean_logo(data: bytes) -> CleanLogo:
    """The logo Vouch stores for the uploaded ``data``: a fresh PNG of at most
    ``MAX_SIDE`` pixels a side. ``LogoRefused`` when ``data`` is not acceptable."""
    if not data:
        raise LogoRefused("The file is empty.")
    if len(data) > MAX_BYTES:
        raise LogoRefused(
            f"The file is {filesizeformat(len(data))}; a logo can be at most {filesizeformat(MAX_BYTES)}. "
            "Export it smaller (a few hundred pixels wide is plenty) and upload it again."
        )
    try:
        with Image.open(io.BytesIO(data), formats=list(FORMATS)) as image:
            image_format = image.format or ""
            width, height = image.size
            if width > MAX_SOURCE_SIDE or height > MAX_SOURCE_SIDE or width * height > MAX_SOURCE_PIXELS:
                raise LogoRefused(
                    f"The image is {width} × {height} pixels; a logo can be at most {MAX_SOURCE_SIDE} pixels "
                    "a side. Make it smaller and upload it again."
                )
            if min(width, height) < 1 or max(width, height) < MIN_SIDE:
                raise LogoRefused(f"The image is {width} × {height} pixels: too small to show as a logo.")
            image.load()  # every pixel of the first frame
            # A phone photo's "which way up" lives in its metadata, which goes: apply it first.
            picture = ImageOps.exif_transpose(image).convert("RGBA")
    except LogoRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise LogoRefused(f"The image is too large: a logo can be at most {MAX_SOURCE_SIDE} pixels a side.") from exc
    except UnidentifiedImageError as exc:
        raise _not_an_image() from exc
    except Exception as exc:  # noqa: BLE001 - a decoder fed a hostile file fails in many ways; all mean "not one"
        log.info("references: a logo upload did not decode (%s)", type(exc).__name__)
        raise _not_an_image() from exc
    _check_whole(data, image_format)
    picture.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    # No pnginfo, no exif, no icc_profile: nothing but the pixels is written.
    picture.save(out, "PNG", optimize=True)
    png = out.getvalue()
    if len(png) > MAX_BYTES:
        raise LogoRefused(
            f"The logo is {filesizeformat(len(png))} once converted to PNG; it can be at most "
            f"{filesizeformat(MAX_BYTES)}. Use fewer colours or a smaller image and upload it again."
        )
    return CleanLogo(png=png, width=picture.width, height=picture.height)
