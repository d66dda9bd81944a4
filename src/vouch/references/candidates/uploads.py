"""Which files may be attached to a candidate, checked by their contents.

The extension says what the file claims to be; the first bytes must agree, and then
the whole file: a PDF must parse and an image decode, with nothing after its end
(``file_contents``); the zip based formats must hold their required entries, and a
text file be UTF-8 throughout. The type Vouch stores and later
sends is the one it checked, never the browser's claim, and downloads are always
sent as attachments, so an upload cannot become a page in Vouch's origin."""

from __future__ import annotations

import codecs
import unicodedata
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.template.defaultfilters import filesizeformat

from vouch.references.candidates import file_contents

HEAD_BYTES = 8192
READ_BYTES = 64 * 1024
ODT_MIMETYPE = b"application/vnd.oasis.opendocument.text"


class AttachmentRefused(ValueError):
    """The file cannot be attached; the message says why, for the person uploading."""


def _zip_names(upload: UploadedFile) -> zipfile.ZipFile | None:
    try:
        upload.seek(0)
        return zipfile.ZipFile(upload)
    except (zipfile.BadZipFile, OSError, ValueError):
        return None


def _is_docx(head: bytes, upload: UploadedFile) -> bool:
    if not head.startswith(b"PK\x03\x04"):
        return False
    archive = _zip_names(upload)
    if archive is None:
        return False
    names = set(archive.namelist())  # the central directory only: nothing is decompressed
    return {"[Content_Types].xml", "word/document.xml"} <= names


def _is_odt(head: bytes, upload: UploadedFile) -> bool:
    if not head.startswith(b"PK\x03\x04"):
        return False
    archive = _zip_names(upload)
    if archive is None or "mimetype" not in archive.namelist():
        return False
    try:
        with archive.open("mimetype") as entry:
            # A bounded read: the entry could be a decompression bomb.
            return entry.read(len(ODT_MIMETYPE) + 1).strip() == ODT_MIMETYPE
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, RuntimeError):
        return False


def _is_text(head: bytes, upload: UploadedFile) -> bool:
    """UTF-8 (with or without BOM) all the way through, and no NUL bytes."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    upload.seek(0)
    try:
        for chunk in upload.chunks(READ_BYTES):
            if b"\x00" in chunk:
                return False
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _starts(*prefixes: bytes) -> Callable[[bytes, UploadedFile], bool]:
    return lambda head, upload: head.startswith(prefixes)


def _whole(check_contents: Callable[[bytes], None], prefix: bytes) -> Callable[[bytes, UploadedFile], bool]:
    """The first bytes, then the whole file (at most ``max_bytes()``, already checked)."""

    def matches(head: bytes, upload: UploadedFile) -> bool:
        if not head.startswith(prefix):
            return False
        upload.seek(0)
        try:
            check_contents(upload.read())
        except file_contents.Unacceptable as refused:
            raise AttachmentRefused(str(refused)) from refused
        return True

    return matches


@dataclass(frozen=True)
class FileKind:
    label: str
    content_type: str
    extensions: tuple[str, ...]
    matches: Callable[[bytes, UploadedFile], bool]


KINDS = (
    FileKind("PDF document", "application/pdf", (".pdf",), _whole(file_contents.check_pdf, b"%PDF-")),
    FileKind(
        "Word document",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        (".docx",),
        _is_docx,
    ),
    # The OLE2 compound file header (Word 97-2003).
    FileKind("Word 97-2003 document", "application/msword", (".doc",), _starts(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")),
    FileKind("OpenDocument text", "application/vnd.oasis.opendocument.text", (".odt",), _is_odt),
    FileKind("plain text file", "text/plain; charset=utf-8", (".txt",), _is_text),
    FileKind("PNG image", "image/png", (".png",), _whole(file_contents.check_png, b"\x89PNG\r\n\x1a\n")),
    FileKind("JPEG image", "image/jpeg", (".jpg", ".jpeg"), _whole(file_contents.check_jpeg, b"\xff\xd8\xff")),
)
BY_EXTENSION = {extension: kind for kind in KINDS for extension in kind.extensions}
ACCEPTED = "PDF, Word (.docx, .doc), OpenDocument text (.odt), plain text (.txt), PNG and JPEG"
ACCEPT_ATTRIBUTE = ",".join(BY_EXTENSION)


def max_bytes() -> int:
    return settings.VOUCH_MAX_BODY_BYTES


def display_name(uploaded: str) -> str:
    """The uploaded name made safe to show and to offer back as a download name: the
    last path component, no control or formatting characters, at most 255 characters
    with the extension kept."""
    name = unicodedata.normalize("NFC", uploaded or "").replace("\\", "/").rsplit("/", 1)[-1]
    # Separators (tabs, newlines, odd spaces) become spaces; other control and format
    # characters (bidi overrides that disguise an extension, NULs) go.
    name = "".join(
        " " if unicodedata.category(ch)[0] == "Z" or ch in "\t\r\n" else ch
        for ch in name
        if unicodedata.category(ch)[0] != "C" or ch in "\t\r\n"
    )
    name = " ".join(name.split()).strip(" .")
    suffix = PurePosixPath(name).suffix.lower()
    if len(name) > 255:
        name = name[: 255 - len(suffix)] + suffix
    return name


def check(upload: UploadedFile) -> tuple[FileKind, str]:
    """The kind of an acceptable upload and its cleaned name; ``AttachmentRefused`` otherwise."""
    name = display_name(upload.name or "")
    kind = BY_EXTENSION.get(PurePosixPath(name).suffix.lower())
    if kind is None:
        raise AttachmentRefused(f"Vouch accepts {ACCEPTED} files only.")
    if upload.size is None or upload.size == 0:
        raise AttachmentRefused("The file is empty.")
    if upload.size > max_bytes():
        raise AttachmentRefused(
            f"The file is {filesizeformat(upload.size)}; files can be at most {filesizeformat(max_bytes())}."
        )
    upload.seek(0)
    head = upload.read(HEAD_BYTES)
    matched = kind.matches(head, upload)
    upload.seek(0)
    if not matched:
        article = "an" if kind.label[0] in "AEIOU" else "a"
        raise AttachmentRefused(f"The file is named like {article} {kind.label}, but its contents are not one.")
    return kind, name
