"""Whole-file checks for the attachment types a person can open in a browser or a
viewer: an image must decode in full and a PDF must parse, with nothing after the
end of either.

Why nothing after the end: an image viewer never shows bytes after the image's end
marker, and a PDF reader reads a file from its last ``%%EOF``, so such bytes serve no
one looking at the file; they are where a polyglot hides its HTML, script, PHP or
zip. Downloads are already safe (attachment, checked type, ``nosniff``), but the file
also travels on: to the recruiter's disk, a mail gateway, another system. Some phones
add a short video after a photo ("motion photos"); those are refused with a message
saying to export the still picture.

What it cannot promise: a PDF can carry any bytes inside its own objects (that is
what PDF streams are), so a PDF that parses may still hold, say, HTML as data. Word
and OpenDocument files are checked by their structure only (``uploads``)."""

from __future__ import annotations

import io
import logging
import warnings

from PIL import Image, UnidentifiedImageError
from pypdf import PdfReader
from pypdf.errors import FileNotDecryptedError

log = logging.getLogger("vouch.references")

# Pillow only warns about an image between its two limits (about 89 and 179
# megapixels) and refuses above; Vouch's own limit is lower, so the warning is made an
# error once, here, rather than per call (warnings.catch_warnings is not thread-safe).
# Nothing else in Vouch opens an image that large.
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)

# At most this many pixels (50 megapixels: 8660 × 5773, above any common camera's
# default). Checked from the header, before anything is decoded, so a small file that
# claims a huge image (a decompression bomb) costs nothing. Pillow's own limit is
# about 179 megapixels; a PNG this size still decodes to up to 200 MB in memory.
MAX_PIXELS = 50_000_000
# A PNG always ends with this exact chunk: IEND has no data, so its length and CRC
# are fixed.
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
# The whitespace (and the NUL padding some writers leave) a PDF may end with.
PDF_TRAILING_SPACE = b"\x00\t\n\x0c\r "
TRAILING = (
    "The {kind} has data after its end, which no viewer shows and which can hide another kind of file. "
    "Open it and save or export it again, then upload that copy."
)


class Unacceptable(ValueError):
    """The file is not a sound file of its kind; the message says why, for the person."""


SMALLER = f"images can be at most {MAX_PIXELS // 1_000_000} megapixels. Make it smaller and upload it again."


def _too_large(image: Image.Image) -> None:
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise Unacceptable(f"The image is {width} × {height} pixels; {SMALLER}")


def _decode(data: bytes, image_format: str) -> None:
    """Open ``data`` as ``image_format`` only, check its size from the header, verify it
    (for PNG: every chunk's checksum) and decode every pixel. ``Unacceptable`` when any
    of it fails."""
    not_one = Unacceptable(f"The file is named like a {image_format} image, but its contents are not one.")
    try:
        with Image.open(io.BytesIO(data), formats=[image_format]) as image:
            _too_large(image)
            image.verify()
        with Image.open(io.BytesIO(data), formats=[image_format]) as image:
            if image_format == "JPEG":
                # Every coded block is still read and decoded, at an eighth of the
                # size in memory.
                image.draft(image.mode, (image.width // 8, image.height // 8))
            image.load()
    except Unacceptable:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Above Pillow's own limits, refused by it while reading the header.
        raise Unacceptable(f"The image is too large: {SMALLER}") from exc
    except UnidentifiedImageError as exc:
        raise not_one from exc
    except Exception as exc:  # noqa: BLE001 - a decoder fed a hostile file fails in many ways; all mean "not one"
        log.info("references: an image upload did not decode (%s)", type(exc).__name__)
        raise not_one from exc


def check_png(data: bytes) -> None:
    _decode(data, "PNG")
    # The first IEND chunk must end the file. Pillow stops reading at it.
    if data.find(PNG_END) + len(PNG_END) != len(data):
        raise Unacceptable(TRAILING.format(kind="image"))


def _jpeg_end(data: bytes) -> int | None:
    """The offset just after the JPEG's end-of-image marker, found by walking its
    segments; None when the structure breaks.

    Hand-written because Pillow decodes a JPEG without saying where it ended, and the
    end marker's bytes (FF D9) also end any thumbnail embedded in the metadata, so the
    first FF D9 is not the end."""
    pos, size = 2, len(data)  # after the start-of-image marker
    while pos < size:
        if data[pos] != 0xFF:
            return None
        while pos < size and data[pos] == 0xFF:  # fill bytes before a marker
            pos += 1
        if pos >= size:
            return None
        marker = data[pos]
        pos += 1
        if marker == 0xD9:  # end of image
            return pos
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            continue
        length = int.from_bytes(data[pos : pos + 2], "big")
        if length < 2 or pos + length > size:
            return None
        pos += length
        if marker == 0xDA:
            # Start of scan: coded data runs to the next marker; FF 00 is an escaped
            # FF and FF D0-D7 are restart markers, both part of the data.
            while True:
                pos = data.find(b"\xff", pos)
                if pos < 0 or pos + 1 >= size:
                    return None
                following = data[pos + 1]
                if following != 0x00 and not 0xD0 <= following <= 0xD7:
                    break
                pos += 2
    return None


def check_jpeg(data: bytes) -> None:
    _decode(data, "JPEG")
    end = _jpeg_end(data)
    if end is None:
        raise Unacceptable("The file is named like a JPEG image, but its contents are not one.")
    if end != len(data):
        raise Unacceptable(TRAILING.format(kind="image"))


def check_pdf(data: bytes) -> None:
    """The PDF parses: its cross-reference table and trailer read, and every page of its
    page tree resolves; nothing but whitespace follows its last ``%%EOF``. A PDF that
    needs a password to open is refused: nobody in the company could read it."""
    not_one = Unacceptable("The file is named like a PDF document, but its contents are not one.")
    end = data.rfind(b"%%EOF")
    if end < 0:
        raise not_one
    if data[end + len(b"%%EOF") :].strip(PDF_TRAILING_SPACE):
        raise Unacceptable(TRAILING.format(kind="PDF"))
    try:
        reader = PdfReader(io.BytesIO(data))
        pages = reader.pages
        if len(pages) == 0:
            raise not_one
        for page in pages:
            _ = page.mediabox
    except Unacceptable:
        raise
    except FileNotDecryptedError as exc:
        raise Unacceptable("The PDF is protected by a password: upload a copy that opens without one.") from exc
    except Exception as exc:  # noqa: BLE001 - a parser fed a hostile file fails in many ways; all mean "not one"
        log.info("references: a PDF upload did not parse (%s)", type(exc).__name__)
        raise not_one from exc
