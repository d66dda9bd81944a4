"""A private PostgreSQL cluster for tests that stop or restart the database server.

Never the machine's own PostgreSQL: a fresh cluster (initdb) in a temporary
directory, on a free port, trust authentication on 127.0.0.1 only. PostgreSQL
refuses to run as root, so when the tests run as root the cluster runs as the
``postgres`` user."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.live import free_port


def binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


@dataclass
class PrivatePostgres:
    root: Path
    bin: Path
    port: int

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 120) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=timeout, cwd=self.root)

    def pg_ctl(self, action: str, *extra: str) -> None:
        # -w: wait until the server accepts connections (or has stopped).
        self._run("pg_ctl", action, "-D", str(self.data), "-w", "-t", "60", "-l", str(self.root / "log"), *extra)

    def start(self) -> None:
        self.pg_ctl("start")

    def stop(self) -> None:
        self.pg_ctl("stop", "-m", "fast")

    def restart(self) -> None:
        self.pg_ctl("restart", "-m", "fast")


def start_private_postgres() -> PrivatePostgres:
    bin_dir = binaries()
    if bin_dir is None:
        raise RuntimeError("no PostgreSQL binaries under /usr/lib/postgresql")
    root = Path(tempfile.mkdtemp(prefix="vouch-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    cluster = PrivatePostgres(root=root, bin=bin_dir, port=free_port())
    cluster._run("initdb", "-D", str(cluster.data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")
    with (cluster.data / "postgresql.conf").open("a") as conf:
        conf.write(
            f"port = {cluster.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{root}'\n"
            "fsync = off\nmax_connections = 200\n"
        )
    cluster.start()
    return cluster


def remove(cluster: PrivatePostgres) -> None:
    with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
        cluster.pg_ctl("stop", "-m", "immediate")
    shutil.rmtree(cluster.root, ignore_errors=True)
