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
        run_as_postgres([str(self.bin / args[0]), *args[1:]], cwd=self.root, timeout=timeout)

    def configure(self, settings: dict[str, str] | None = None) -> None:
        """Append to postgresql.conf: its own port and socket, then ``settings`` (later
        lines win, so this also overrides what a base backup copied from a primary)."""
        lines = {
            "port": str(self.port),
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.root}'",
            "fsync": "off",
            "max_connections": "200",
            **(settings or {}),
        }
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("".join(f"{name} = {value}\n" for name, value in lines.items()))

    def execute(self, query: str, *params) -> list[tuple]:
        """Run one statement (autocommit) and return its rows."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as connection:
            cursor = connection.execute(query, params or None)
            return cursor.fetchall() if cursor.description else []

    def pg_ctl(self, action: str, *extra: str) -> None:
        # -w: wait until the server accepts connections (or has stopped).
        self._run("pg_ctl", action, "-D", str(self.data), "-w", "-t", "60", "-l", str(self.root / "log"), *extra)

    def start(self) -> None:
        self.pg_ctl("start")

    def stop(self) -> None:
        self.pg_ctl("stop", "-m", "fast")

    def restart(self) -> None:
        self.pg_ctl("restart", "-m", "fast")


class CommandFailed(subprocess.CalledProcessError):
    def __str__(self) -> str:  # what the program said, in the test's failure
        return f"{super().__str__()}\n{self.stdout}{self.stderr}".rstrip()


def run_as_postgres(command: list[str], cwd: Path | None = None, timeout: float = 120) -> str:
    """Run a PostgreSQL (or pgBackRest) program, as the postgres user when we are root;
    its output, or CalledProcessError with the output in the message."""
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    if done.returncode:
        raise CommandFailed(done.returncode, command, done.stdout, done.stderr)
    return done.stdout


def private_root(prefix: str = "vouch-pg-") -> Path:
    """An empty directory the cluster's user owns."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    return root


def _binaries_or_fail() -> Path:
    bin_dir = binaries()
    if bin_dir is None:
        raise RuntimeError("no PostgreSQL binaries under /usr/lib/postgresql")
    return bin_dir


def start_private_postgres(settings: dict[str, str] | None = None) -> PrivatePostgres:
    """A new cluster, started; ``settings`` are added to its postgresql.conf
    (e.g. ``{"archive_mode": "on", "archive_command": "'...'"}``)."""
    cluster = PrivatePostgres(root=private_root(), bin=_binaries_or_fail(), port=free_port())
    cluster._run("initdb", "-D", str(cluster.data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")
    cluster.configure(settings)
    cluster.start()
    return cluster


def start_standby(primary: PrivatePostgres, name: str = "standby1") -> PrivatePostgres:
    """A streaming standby of ``primary``: pg_basebackup with -R (standby.signal and a
    primary_conninfo naming it ``name``), on a port of its own, started."""
    standby = PrivatePostgres(root=private_root("vouch-pg-standby-"), bin=primary.bin, port=free_port())
    conninfo = f"host=127.0.0.1 port={primary.port} user=postgres application_name={name}"
    standby._run(
        "pg_basebackup", "-d", conninfo, "-D", str(standby.data), "-R", "-X", "stream", "--no-sync", "-c", "fast"
    )
    # It does not archive (archive_mode=on archives on the primary only, but say so).
    standby.configure({"archive_mode": "off"})
    standby.start()
    return standby


def remove(cluster: PrivatePostgres) -> None:
    with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
        cluster.pg_ctl("stop", "-m", "immediate")
    shutil.rmtree(cluster.root, ignore_errors=True)
