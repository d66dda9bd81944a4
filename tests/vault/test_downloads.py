"""vouch.vault.downloads: the first chunk read before any header, the handle closed on
every path, and the headers of every download."""

from __future__ import annotations

import io

import pytest

from vouch.vault import downloads
from vouch.vault.files import CHUNK_BYTES


class Handle(io.BytesIO):
    def __init__(self, data: bytes = b"", *, fail: bool = False) -> None:
        super().__init__(data)
        self.fail = fail

    def read(self, size: int = -1) -> bytes:
        if self.fail:
            raise OSError("damaged")
        return super().read(size)


class Storage:
    def __init__(self, handle: Handle) -> None:
        self.handle = handle

    def open(self, name: str) -> Handle:
        return self.handle


def test_the_first_chunk_is_read_before_the_response_and_the_rest_streams():
    data = b"x" * CHUNK_BYTES + b"tail"
    handle = Handle(data)
    first, opened = downloads.open_checked(Storage(handle), "file")
    assert first == data[:CHUNK_BYTES] and opened is handle and not handle.closed
    response = downloads.download(first, opened, content_type="application/pdf", size=len(data), filename="Zoë.pdf")
    assert response["Content-Length"] == str(len(data))
    assert response["Content-Disposition"] == "attachment; filename*=utf-8''Zo%C3%AB.pdf"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "private, no-store"
    assert b"".join(response.streaming_content) == data
    assert handle.closed


def test_a_damaged_first_chunk_closes_the_handle():
    handle = Handle(fail=True)
    with pytest.raises(OSError, match="damaged"):
        downloads.open_checked(Storage(handle), "file")
    assert handle.closed


def test_a_response_closed_early_closes_the_handle():
    handle = Handle(b"a" * (3 * CHUNK_BYTES))
    stream = downloads.chunks(handle.read(CHUNK_BYTES), handle)
    assert next(stream) == b"a" * CHUNK_BYTES
    stream.close()
    assert handle.closed
    assert list(downloads.chunks(b"", Handle(b""))) == []
