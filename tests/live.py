"""Run the real server (`vouch serve`: granian, TLS, the HTTP redirect) for tests.

Each server gets its own data directory and free ports. With VOUCH_TEST_SERVICES=1
it uses a fresh PostgreSQL database of its own and Redis, like production."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VOUCH = Path(sys.executable).with_name("vouch")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveServer:
    data_dir: Path
    https_port: int
    http_port: int
    env: dict[str, str]
    process: subprocess.Popen | None = None
    log_path: Path = field(init=False)
    pg_database: str | None = None
    log_file: Path | None = None  # default: server.log in the data directory

    @property
    def url(self) -> str:
        return f"https://localhost:{self.https_port}"

    @property
    def http_url(self) -> str:
        return f"http://localhost:{self.http_port}"

    @property
    def cert_path(self) -> Path:
        return self.data_dir / "tls" / "cert.pem"

    def vouch(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run the `vouch` command against this server's data."""
        return subprocess.run(
            [str(VOUCH), *args], env=self.env, capture_output=True, text=True, timeout=120, check=check
        )

    def start(self, timeout: float = 60) -> LiveServer:
        self.log_path = self.log_file or self.data_dir / "server.log"
        log = self.log_path.open("wb")
        self.process = subprocess.Popen([str(VOUCH), "serve"], env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"vouch serve exited:\n{self.log_path.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.https_port), timeout=0.5):
                    pass
                with socket.create_connection(("127.0.0.1", self.http_port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"vouch serve did not listen in {timeout}s:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.pg_database:
            _drop_pg_database(self.pg_database)
            _drop_redis_keys(self.env["VOUCH_REDIS_URL"], self.pg_database)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _pg_admin():
    import psycopg

    from vouch.config import parse_database_url

    db = parse_database_url(os.environ.get("VOUCH_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"))
    conn = psycopg.connect(
        host=db.host, port=db.port or 5432, user=db.user, password=db.password, dbname=db.name, autocommit=True
    )
    return conn, db


def _drop_pg_database(name: str) -> None:
    conn, _ = _pg_admin()
    with conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    drop_pg_databases_with_prefix(f"{name}_")


def drop_pg_databases_with_prefix(prefix: str) -> None:
    """Drop the company databases (and template) a test run or live server made, then
    the company roles (after the databases, whose grants would otherwise hold them)."""
    from psycopg import sql

    conn, _ = _pg_admin()
    with conn:
        pattern = prefix.replace("_", r"\_") + "%"
        names = [row[0] for row in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", [pattern])]
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        roles = [row[0] for row in conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE %s", [pattern])]
        for role in roles:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def _drop_redis_keys(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)


def make_server(
    extra_env: dict[str, str] | None = None,
    workers: int = 1,
    data_dir: Path | None = None,
    services: bool | None = None,
) -> LiveServer:
    """``data_dir``: an existing directory to use (a test's own filesystem); ``services``:
    whether to use PostgreSQL and Redis (default: VOUCH_TEST_SERVICES=1)."""
    data_dir = data_dir or Path(tempfile.mkdtemp(prefix="vouch-live-"))
    https_port, http_port = free_port(), free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if (not k.startswith("VOUCH_") or k.startswith("VOUCH_TEST_")) and k != "DJANGO_SETTINGS_MODULE"
    }
    env.update(
        {
            "VOUCH_DATA_DIR": str(data_dir),
            "VOUCH_HTTPS_PORT": str(https_port),
            "VOUCH_HTTP_PORT": str(http_port),
            "VOUCH_PUBLIC_URL": f"https://localhost:{https_port}",
            "VOUCH_WORKERS": str(workers),
            "VOUCH_LOG_LEVEL": "INFO",
        }
    )
    server = LiveServer(data_dir=data_dir, https_port=https_port, http_port=http_port, env=env)
    if services is None:
        services = os.environ.get("VOUCH_TEST_SERVICES") == "1"
    if services:
        name = f"vouch_live_{uuid.uuid4().hex[:10]}"
        conn, db = _pg_admin()
        with conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        auth = f"{db.user}:{db.password}@" if db.password else f"{db.user}@"
        env["VOUCH_DATABASE_URL"] = f"postgres://{auth}{db.host}:{db.port or 5432}/{name}"
        env["VOUCH_REDIS_URL"] = os.environ.get("VOUCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
        # Rate-limit counters and sessions of one server must not leak into another's.
        env["VOUCH_REDIS_KEY_PREFIX"] = name
        env["VOUCH_COMPANY_DATABASE_URL"] = env["VOUCH_DATABASE_URL"]
        env["VOUCH_COMPANY_DATABASE_PREFIX"] = f"{name}_c"
        server.pg_database = name
    env.update(extra_env or {})
    return server


def cleanup(server: LiveServer) -> None:
    server.stop()
    shutil.rmtree(server.data_dir, ignore_errors=True)
