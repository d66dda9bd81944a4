"""pgBackRest for tests: a stanza whose repository is a bucket on the test S3 server.

pgBackRest 2.45 speaks S3 only over HTTPS (there is no plain-HTTP option), so it uses
the SeaweedFS fixture's HTTPS port and trusts its self-signed certificate through
repo1-storage-ca-file. It runs as the cluster's user (postgres when the tests run as
root), so its configuration, lock and log directories live in a directory that user owns;
the configuration holds the S3 secret, so it is 0600."""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from tests.seaweed import ACCESS_KEY, SECRET_KEY, SeaweedFS
from tests.server.private_postgres import PrivatePostgres, private_root, run_as_postgres

STANZA = "vouch"


@dataclass
class PgBackRest:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "pgbackrest.conf"

    def command(self, *args: str) -> str:
        """The command line (for archive_command, with ``%p`` among ``args``)."""
        return " ".join(["pgbackrest", f"--config={self.config}", f"--stanza={STANZA}", *args])

    def run(self, *args: str, timeout: float = 120) -> str:
        return run_as_postgres(
            ["pgbackrest", f"--config={self.config}", f"--stanza={STANZA}", "--log-level-console=warn", *args],
            cwd=self.root,
            timeout=timeout,
        )


def new() -> PgBackRest:
    """Its directory (the configuration's path is known before the cluster exists, for
    the cluster's archive_command)."""
    return PgBackRest(root=private_root("vouch-pgbackrest-"))


def configure(backrest: PgBackRest, s3: SeaweedFS, bucket: str, cluster: PrivatePostgres) -> None:
    """Write the configuration for ``cluster`` with its repository in ``bucket``."""
    root = backrest.root
    ca_file = root / "ca.pem"
    shutil.copyfile(s3.ca_file, ca_file)
    lines = [
        "[global]",
        "repo1-type=s3",
        # The certificate is for localhost and 127.0.0.1; pgBackRest checks the name.
        "repo1-s3-endpoint=localhost",
        f"repo1-storage-port={s3.https_port}",
        f"repo1-storage-ca-file={ca_file}",
        f"repo1-s3-bucket={bucket}",
        f"repo1-s3-key={ACCESS_KEY}",
        f"repo1-s3-key-secret={SECRET_KEY}",
        "repo1-s3-region=us-east-1",
        "repo1-s3-uri-style=path",
        "repo1-path=/pgbackrest",
        "repo1-retention-full=2",
        # As docs/postgresql.md says: the archive holds personal data, encrypted before upload.
        "repo1-cipher-type=aes-256-cbc",
        f"repo1-cipher-pass={secrets.token_urlsafe(32)}",
        "compress-type=zst",
        f"lock-path={root / 'lock'}",
        f"log-path={root / 'log'}",
        f"spool-path={root / 'spool'}",
        "log-level-file=off",
        "start-fast=y",
        "",
        f"[{STANZA}]",
        f"pg1-path={cluster.data}",
        f"pg1-port={cluster.port}",
        f"pg1-socket-path={cluster.root}",
        "",
    ]
    backrest.config.write_text("\n".join(lines))
    os.chmod(backrest.config, 0o600)
    os.chmod(ca_file, 0o644)
    if os.geteuid() == 0:
        for path in (backrest.config, ca_file):
            shutil.chown(path, "postgres", "postgres")
