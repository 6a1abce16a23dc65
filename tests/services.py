"""Real servers on 127.0.0.1 for the team set-up's tests: a PostgreSQL instance (the DuckLake
catalog) and an S3 endpoint (moto's server, the data files).

PostgreSQL comes from Debian's `postgresql` package (`.ci/run` installs it when absent); each
test session starts its own instance with `initdb` in a temporary folder, on a free port, with a
password (so the tests go through PGPASSWORD as users do), and stops it at the end. Without the
package the tests skip locally and fail in CI (CI=true), where it must be there.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

PG_USER, PG_PASSWORD, PG_DB = "bellwether", "team-secret", "bellwether"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@dataclasses.dataclass(frozen=True)
class Postgres:
    port: int

    @property
    def conninfo(self) -> str:
        """A libpq connection string without the password (PGPASSWORD carries it)."""
        return f"host=127.0.0.1 port={self.port} dbname={PG_DB} user={PG_USER}"

    def env(self) -> dict:
        return {"PGPASSWORD": PG_PASSWORD}

    def create_database(self, name: str) -> str:
        """A fresh database on the server; the conninfo of it."""
        import psycopg

        with psycopg.connect(self.conninfo, password=PG_PASSWORD, autocommit=True) as db:
            db.execute(f'create database "{name}"')
        return self.conninfo.replace(f"dbname={PG_DB}", f"dbname={name}")


@contextlib.contextmanager
def postgres() -> Iterator[Postgres]:
    bindir = postgres_bin()
    if bindir is None:
        raise FileNotFoundError("PostgreSQL's server programs are not installed (Debian: apt-get install postgresql)")
    as_root = os.geteuid() == 0
    run_as = ["runuser", "-u", "postgres", "--"] if as_root else []
    folder = Path(tempfile.mkdtemp(prefix="bellwether-pg-"))
    data, sock = folder / "data", folder / "sock"
    sock.mkdir()
    pwfile = folder / "pw"
    pwfile.write_text(PG_PASSWORD + "\n")
    if as_root:  # PostgreSQL refuses to run as root: its own user owns the folder
        ids = pwd.getpwnam("postgres")
        for p in (folder, sock, pwfile):
            os.chown(p, ids.pw_uid, ids.pw_gid)
    port = free_port()
    subprocess.run(run_as + [str(bindir / "initdb"), "-D", str(data), "-U", PG_USER, f"--pwfile={pwfile}",
                             "--auth=scram-sha-256", "-E", "UTF8", "--no-sync"], check=True, capture_output=True)
    log = folder / "server.log"
    subprocess.run(run_as + [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "start", "-o",
                             f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off"], check=True, capture_output=True)
    try:
        server = Postgres(port)
        import psycopg

        with psycopg.connect(server.conninfo.replace(f"dbname={PG_DB}", "dbname=postgres"), password=PG_PASSWORD,
                             autocommit=True) as db:
            db.execute(f'create database "{PG_DB}"')
        yield server
    finally:
        subprocess.run(run_as + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@dataclasses.dataclass(frozen=True)
class S3:
    endpoint: str
    bucket: str

    def env(self) -> dict:
        """The standard AWS variables Bellwether (and boto3) read."""
        return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
                "AWS_ENDPOINT_URL": self.endpoint}

    def keys(self, prefix: str = "") -> list[str]:
        import boto3

        client = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        out, token = [], None
        while True:
            page = client.list_objects_v2(Bucket=self.bucket, Prefix=prefix, **({"ContinuationToken": token} if token else {}))
            out += [o["Key"] for o in page.get("Contents", [])]
            if not page.get("IsTruncated"):
                return out
            token = page["NextContinuationToken"]


@contextlib.contextmanager
def s3(bucket: str = "bellwether") -> Iterator[S3]:
    """moto's S3 server on 127.0.0.1, in this process, with one bucket."""
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                             aws_secret_access_key="testing").create_bucket(Bucket=bucket)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield S3(endpoint, bucket)
    finally:
        server.stop()
