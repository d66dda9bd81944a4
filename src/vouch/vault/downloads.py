"""Serving a stored (encrypted) file as a download: the candidates' attachments and the
reports' PDFs.

:func:`open_checked` opens the file and reads its first chunk before any header is
sent, so a damaged or missing file is a clear error page for the view to show, not a
download cut short. :func:`download` streams the rest; later chunks are checked as
they stream, and a failure there ends the response early, which the Content-Length
lets the browser notice."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, cast

from django.core.files.storage import Storage
from django.http import StreamingHttpResponse
from django.utils.http import content_disposition_header

from vouch.vault.files import CHUNK_BYTES


def open_checked(storage: Storage, name: str) -> tuple[bytes, IO[bytes]]:
    """The file's first chunk (decrypted and authenticated, with the header) and its open
    handle, positioned after it. ``OSError`` or ``VaultError`` when it cannot be read
    (the handle is closed then)."""
    handle = storage.open(name)
    try:
        first = handle.read(CHUNK_BYTES)
    except BaseException:
        handle.close()
        raise
    return first, handle


def chunks(first: bytes, handle: IO[bytes]) -> Iterator[bytes]:
    """``first``, then the rest of ``handle`` chunk by chunk; the handle is closed at the
    end, or when the response is closed before it."""
    try:
        if first:
            yield first
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk
    finally:
        handle.close()


def download(first: bytes, handle: IO[bytes], *, content_type: str, size: int, filename: str) -> StreamingHttpResponse:
    """The file as an attachment named ``filename``, never sniffed, never cached."""
    response = StreamingHttpResponse(chunks(first, handle), content_type=content_type)
    response["Content-Length"] = str(size)
    # Always a str for an attachment (None only for an inline response without a name).
    response["Content-Disposition"] = cast(str, content_disposition_header(True, filename))
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response
