"""Object stores: where backups, mirrors and (in production) company files are kept.

One small interface over two kinds of place, named by a URL:

- a local directory (``/srv/backups`` or ``file:///srv/backups``): the embedded default;
- an S3-compatible bucket (``s3://bucket/prefix?endpoint=https://host:9000&region=eu-central-1``):
  any S3 API (AWS, SeaweedFS, MinIO, Ceph...). Credentials come from the usual AWS
  variables or instance role (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``), never
  from the URL, so URLs can be logged and shown to operators.

Objects are written and read as streams of chunks, so no caller holds a whole object in
memory. A write is visible only once complete (a temporary file renamed into place; an
S3 upload is atomic by itself). Keys are relative paths with ``/`` separators.

boto3 does the S3 side (signing, retries, multipart uploads); this module only gives
Vouch's callers one shape for both places and one error for "the store is unreachable".
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, cast
from urllib.parse import parse_qsl, unquote, urlsplit

CHUNK_BYTES = 1024 * 1024
PART_BYTES = 8 * 1024 * 1024  # S3 multipart part size (at least 5 MiB but the last)
SPOOL_BYTES = 1024 * 1024  # a part larger than this waits in a temporary file, not in memory


class StoreError(Exception):
    """Base of the object store's errors."""


class StoreUnavailable(StoreError):
    """The store could not be reached or refused to work (network, credentials, full disk).
    Work that needs it waits and retries; nothing is dropped."""


class ObjectMissing(StoreError, KeyError):
    """No object under that key."""


class PreconditionFailed(StoreError):
    """A conditional write found the object changed or gone since it was read (S3
    ``If-Match``): the newer state is kept and the write is dropped."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified: datetime


def _check_key(key: str) -> str:
    path = PurePosixPath(key)
    if not key or key.startswith("/") or any(part in ("", ".", "..") for part in key.split("/")):
        raise ValueError(f"object key {key!r} must be a relative path without '.' or '..' parts")
    return str(path)


check_key = _check_key


class LocalStore:
    """Objects as files under a directory (0700 directories, 0600 files)."""

    def __init__(self, root: Path, url: str = ""):
        self.root = Path(root)
        self.url = url or str(root)

    def describe(self) -> str:
        return f"directory {self.root}"

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            probe = self.root / f".probe-{uuid.uuid4().hex}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise StoreUnavailable(f"{self.describe()}: {exc.strerror or exc}") from exc

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        path = self._path(key)
        temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        size = 0
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with open(temp, "xb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, path)
        except OSError as exc:
            raise StoreUnavailable(f"{self.describe()}: cannot write {key}: {exc.strerror or exc}") from exc
        finally:
            temp.unlink(missing_ok=True)
        return size

    def put_file(self, key: str, source: Path) -> int:
        return self.put(key, _read_chunks(source))

    def open(self, key: str) -> Iterator[bytes]:
        path = self._path(key)
        try:
            handle = open(path, "rb")  # noqa: SIM115  (closed by the generator)
        except FileNotFoundError:
            raise ObjectMissing(key) from None
        except OSError as exc:
            raise StoreUnavailable(f"{self.describe()}: cannot read {key}: {exc.strerror or exc}") from exc

        def chunks() -> Iterator[bytes]:
            with handle:
                while block := handle.read(CHUNK_BYTES):
                    yield block

        return chunks()

    def get(self, key: str) -> bytes:
        return b"".join(self.open(key))

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            raise ObjectMissing(key) from None

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        if ".." in prefix.split("/") or prefix.startswith("/"):
            raise ValueError(f"prefix {prefix!r} must be relative")
        # Walk only the directory the prefix names (not the whole store): a restore or drill
        # lists one company's sets among thousands of companies'.
        directory = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self.root / directory if directory else self.root
        if not start.is_dir():
            return
        for path in sorted(start.rglob("*")):
            if not path.is_file() or path.name.startswith("."):
                continue
            key = path.relative_to(self.root).as_posix()
            if key.startswith(prefix):
                stat = path.stat()
                yield ObjectInfo(key, stat.st_size, datetime.fromtimestamp(stat.st_mtime, tz=UTC))

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> int:
        count = 0
        for info in list(self.list(prefix)):
            self.delete(info.key)
            count += 1
        return count


def _read_chunks(source: Path) -> Iterator[bytes]:
    with open(source, "rb") as handle:
        while block := handle.read(CHUNK_BYTES):
            yield block


class S3Store:
    """Objects in an S3-compatible bucket, under an optional prefix."""

    def __init__(self, bucket: str, prefix: str = "", endpoint: str = "", region: str = "", url: str = ""):
        import boto3
        from botocore.config import Config

        self.bucket, self.prefix, self.endpoint, self.region = bucket, prefix.strip("/"), endpoint, region
        self.url = url or f"s3://{bucket}/{self.prefix}"
        self._client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint or None,
            region_name=region or "us-east-1",
            config=Config(
                connect_timeout=3,
                read_timeout=30,
                retries={"max_attempts": 3, "mode": "standard"},
                s3={"addressing_style": "path"},
            ),
        )

    def describe(self) -> str:
        where = f" at {self.endpoint}" if self.endpoint else ""
        return f"bucket {self.bucket}{'/' + self.prefix if self.prefix else ''}{where}"

    def _key(self, key: str) -> str:
        key = _check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _unavailable(self, exc: Exception, doing: str) -> StoreUnavailable:
        return StoreUnavailable(f"{self.describe()}: cannot {doing}: {exc}")

    def _call(self, doing: str, function, *args, **kwargs):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return function(*args, **kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound"):
                raise ObjectMissing(doing) from None
            raise self._unavailable(exc, doing) from exc
        except BotoCoreError as exc:
            raise self._unavailable(exc, doing) from exc

    def check(self) -> None:
        self._call("reach the bucket", self._client.head_bucket, Bucket=self.bucket)

    def create_bucket(self) -> None:
        """For tests and first set-up: make the bucket if it does not exist."""
        from botocore.exceptions import ClientError

        try:
            self._client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self._call("create the bucket", self._client.create_bucket, Bucket=self.bucket)

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        return self._upload(key, chunks)

    def put_file(self, key: str, source: Path) -> int:
        return self.put(key, _read_chunks(source))

    def put_if_match(self, key: str, chunks: Iterable[bytes], etag: str) -> int:
        """Write ``key`` only if it still has ``etag`` (compare-and-swap); raises
        ``PreconditionFailed`` if it was replaced or deleted meanwhile. The condition
        is checked when the upload completes, so nothing ever replaces a newer object."""
        return self._upload(key, chunks, if_match=etag)

    def put_if_absent(self, key: str, chunks: Iterable[bytes]) -> int:
        """Write ``key`` only if no object has that name (S3 ``If-None-Match: *``);
        raises ``PreconditionFailed`` if one does: what is there is kept."""
        return self._upload(key, chunks, if_none_match="*")

    def _upload(
        self, key: str, chunks: Iterable[bytes], if_match: str | None = None, if_none_match: str | None = None
    ) -> int:
        """One PUT for a small object, else a multipart upload of 8 MiB parts, one at a
        time. Each part is spooled to a temporary file (ciphertext, when files are
        written) that botocore reads in pieces to sign and send: memory stays at a few
        MiB whatever the size. (boto3's managed upload held about four copies of each
        part of a stream, and cannot send If-Match.)"""
        full = self._key(key)
        condition = {"IfMatch": if_match} if if_match else {}
        if if_none_match:
            condition["IfNoneMatch"] = if_none_match
        pieces = iter(chunks)
        size = 0

        def next_part() -> tempfile.SpooledTemporaryFile | None:
            nonlocal size
            part = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115  (closed by the caller)
            written = 0
            for piece in pieces:
                part.write(piece)
                written += len(piece)
                if written >= PART_BYTES:
                    break
            size += written
            part.seek(0)
            if not written:
                part.close()
                return None
            return part

        first = next_part()
        if first is None or size < PART_BYTES:  # the whole object in one part: a plain PUT
            with first or tempfile.SpooledTemporaryFile() as body:
                self._conditional(key, self._client.put_object, Bucket=self.bucket, Key=full, Body=body, **condition)
            return size
        upload = self._call(f"write {key}", self._client.create_multipart_upload, Bucket=self.bucket, Key=full)
        upload_id, parts = upload["UploadId"], cast(list[dict[str, Any]], [])
        try:
            part: tempfile.SpooledTemporaryFile | None = first
            while part is not None:
                with part:
                    number = len(parts) + 1
                    done = self._call(
                        f"write {key}",
                        self._client.upload_part,
                        Bucket=self.bucket,
                        Key=full,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=part,
                    )
                parts.append({"PartNumber": number, "ETag": done["ETag"]})
                part = next_part()
            self._conditional(
                key,
                self._client.complete_multipart_upload,
                Bucket=self.bucket,
                Key=full,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
                **condition,
            )
        except BaseException:
            with contextlib.suppress(Exception):
                self._client.abort_multipart_upload(Bucket=self.bucket, Key=full, UploadId=upload_id)
            raise
        return size

    def _conditional(self, key: str, function, **kwargs) -> None:
        from botocore.exceptions import ClientError

        try:
            self._call(f"write {key}", function, **kwargs)
        except StoreUnavailable as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") in (
                "PreconditionFailed",
                "ConditionalRequestConflict",
                "412",
                "409",
            ):
                raise PreconditionFailed(f"{key} changed or was deleted since it was read") from None
            raise
        except ObjectMissing:  # AWS answers If-Match on a missing key with 404
            raise PreconditionFailed(f"{key} was deleted since it was read") from None

    def open(self, key: str) -> Iterator[bytes]:
        return self.open_tagged(key)[1]

    def open_tagged(self, key: str) -> tuple[str, Iterator[bytes]]:
        """The object's ETag (for :meth:`put_if_match`) and its chunks, from one GET."""
        response = self._call(f"read {key}", self._client.get_object, Bucket=self.bucket, Key=self._key(key))
        body = response["Body"]

        def chunks() -> Iterator[bytes]:
            from botocore.exceptions import BotoCoreError

            try:
                yield from body.iter_chunks(CHUNK_BYTES)
            except BotoCoreError as exc:
                raise self._unavailable(exc, f"read {key}") from exc
            finally:
                body.close()

        return response["ETag"], chunks()

    def get(self, key: str) -> bytes:
        return b"".join(self.open(key))

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except ObjectMissing:
            return False
        return True

    def size(self, key: str) -> int:
        response = self._call(f"look up {key}", self._client.head_object, Bucket=self.bucket, Key=self._key(key))
        return int(response["ContentLength"])

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        if ".." in prefix.split("/") or prefix.startswith("/"):
            raise ValueError(f"prefix {prefix!r} must be relative")
        full = (f"{self.prefix}/" if self.prefix else "") + prefix
        paginator = self._client.get_paginator("list_objects_v2")
        pages = self._call("list objects", lambda: list(paginator.paginate(Bucket=self.bucket, Prefix=full)))
        strip = len(self.prefix) + 1 if self.prefix else 0
        for page in pages:
            for item in page.get("Contents", []):
                yield ObjectInfo(item["Key"][strip:], int(item["Size"]), item["LastModified"])

    def delete(self, key: str) -> None:
        self._call(f"delete {key}", self._client.delete_object, Bucket=self.bucket, Key=self._key(key))

    def delete_prefix(self, prefix: str) -> int:
        keys = [info.key for info in self.list(prefix)]
        for start in range(0, len(keys), 1000):
            batch = [{"Key": self._key(key)} for key in keys[start : start + 1000]]
            self._call("delete objects", self._client.delete_objects, Bucket=self.bucket, Delete={"Objects": batch})
        return len(keys)


Store = LocalStore | S3Store


def open_store(url: str) -> Store:
    """The store a URL names: ``s3://bucket/prefix?endpoint=...&region=...``, or a
    directory (a path or ``file://`` URL)."""
    parts = urlsplit(url)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ValueError(f"{url!r}: an s3:// URL needs a bucket name")
        query = dict(parse_qsl(parts.query))
        unknown = set(query) - {"endpoint", "region"}
        if unknown:
            raise ValueError(f"{url!r}: unknown option(s) {', '.join(sorted(unknown))} (endpoint, region)")
        return S3Store(
            bucket=parts.netloc,
            prefix=unquote(parts.path),
            endpoint=query.get("endpoint", ""),
            region=query.get("region", ""),
            url=url,
        )
    if parts.scheme == "file":
        return LocalStore(Path(unquote(parts.path)), url=url)
    if parts.scheme and len(parts.scheme) > 1:
        raise ValueError(f"{url!r}: a store is a directory or an s3:// URL")
    return LocalStore(Path(url).resolve(), url=url)


def is_local(url: str) -> bool:
    return urlsplit(url).scheme != "s3"


def join(url: str, *parts: str) -> str:
    """``url`` with path parts appended (before an s3:// URL's options)."""
    parts_ = urlsplit(url)
    suffix = "/".join(p.strip("/") for p in parts if p.strip("/"))
    if parts_.scheme == "s3":
        path = parts_.path.rstrip("/") + "/" + suffix
        return f"s3://{parts_.netloc}{path}" + (f"?{parts_.query}" if parts_.query else "")
    return url.rstrip("/") + "/" + suffix
