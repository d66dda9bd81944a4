"""Both kinds of object store behave alike: a local directory and a real S3 server."""

from __future__ import annotations

import os

import pytest

from vouch.objectstore import LocalStore, ObjectMissing, S3Store, StoreUnavailable, open_store


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return open_store(str(tmp_path / "store"))
    server = request.getfixturevalue("s3_server")
    bucket = request.getfixturevalue("s3_bucket")
    return open_store(server.url(bucket, "some/prefix"))


def test_a_stream_written_is_read_back_in_chunks_and_listed(store):
    chunks = [os.urandom(300_000) for _ in range(40)]  # 12 MB: a multipart upload on S3
    assert store.put("sets/a/object.bin", iter(chunks)) == 12_000_000
    assert b"".join(store.open("sets/a/object.bin")) == b"".join(chunks)
    assert store.size("sets/a/object.bin") == 12_000_000
    store.put("sets/b/other", [b"x"])
    assert [info.key for info in store.list("sets/")] == ["sets/a/object.bin", "sets/b/other"]
    assert [info.key for info in store.list("sets/a/")] == ["sets/a/object.bin"]
    assert store.exists("sets/b/other") and not store.exists("sets/b/missing")


def test_missing_objects_and_prefix_deletion(store):
    with pytest.raises(ObjectMissing):
        b"".join(store.open("nothing/here"))
    for n in range(3):
        store.put(f"company/x/{n}", [b"data"])
    store.put("company/y/0", [b"keep"])
    assert store.delete_prefix("company/x/") == 3
    assert [info.key for info in store.list("company/")] == ["company/y/0"]


@pytest.mark.parametrize("key", ["../escape", "/absolute", "a//b", "a/./b", ""])
def test_keys_cannot_leave_the_store(store, key):
    with pytest.raises(ValueError):
        store.put(key, [b"x"])


def test_a_prefix_keeps_stores_apart(s3_server, s3_bucket):
    eu, us = open_store(s3_server.url(s3_bucket, "eu")), open_store(s3_server.url(s3_bucket, "us"))
    eu.put("only-in-eu", [b"eu data"])
    assert [info.key for info in us.list()] == []
    assert [info.key for info in eu.list()] == ["only-in-eu"]


def test_an_unreachable_server_is_one_clear_error(tmp_path):
    from tests.live import free_port

    store = open_store(f"s3://bucket/p?endpoint=http://127.0.0.1:{free_port()}&region=us-east-1")
    assert isinstance(store, S3Store)
    with pytest.raises(StoreUnavailable, match="bucket bucket/p"):
        store.check()
    with pytest.raises(StoreUnavailable):
        store.put("k", [b"x"])


def test_a_directory_that_cannot_be_written_is_unavailable(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    store = LocalStore(blocker / "store")
    with pytest.raises(StoreUnavailable):
        store.check()


@pytest.mark.parametrize("url", ["s3://", "ftp://host/x", "s3://b/p?secret=1"])
def test_bad_urls_are_refused(url):
    with pytest.raises(ValueError):
        open_store(url)
