"""What `--warehouse` / BELLWETHER_WAREHOUSE names: a DuckLake, or one DuckDB file.

- `ducklake:sqlite:PATH` (the default, `warehouse/bellwether.sqlite`): DuckLake with its catalog
  in a SQLite file and its data in Parquet files in a folder beside it (`bellwether.files/`,
  unless `bellwether init --data-path` put them elsewhere). Readers never wait for a writer.
- `ducklake:postgres:CONNINFO`: DuckLake with its catalog in PostgreSQL (a libpq connection
  string such as `host=db dbname=bellwether user=bellwether`; the password comes from
  PGPASSWORD or ~/.pgpass, never from the string) and its data where `bellwether init
  --data-path s3://bucket/prefix/` put it: the team set-up, shared by several machines.
- A path (`warehouse/bellwether.duckdb`): one DuckDB file. One process writes at a time and
  readers are refused while it does.
- `md:NAME` (MotherDuck) or another DuckDB target: handed to DuckDB as it is.

A DuckLake whose catalog is a DuckDB file is refused: that file has the single-writer lock this
storage exists to avoid (readers would be refused during every write).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

LAKE_PREFIX = "ducklake:"
FILE, LAKE, REMOTE = "file", "lake", "remote"
SQLITE, POSTGRES = "sqlite", "postgres"
LAKE_CATALOG_NAME = "bellwether"  # how the lake is attached (ATTACH ... AS bellwether)


class TargetError(ValueError):
    """A warehouse target that cannot be used, with what to write instead."""


@dataclasses.dataclass(frozen=True)
class Target:
    kind: str                 # file | lake | remote
    location: str             # the file path, the SQLite catalog path, the conninfo, or the remote target
    catalog: str | None = None  # sqlite | postgres (lake only)

    def __str__(self) -> str:
        if self.kind == LAKE:
            return f"{LAKE_PREFIX}{self.catalog}:{self.location}"
        return self.location

    @property
    def is_lake(self) -> bool:
        return self.kind == LAKE

    @property
    def path(self) -> Path | None:
        """The local file behind the target: the DuckDB file or the SQLite catalog."""
        if self.kind == FILE or (self.kind == LAKE and self.catalog == SQLITE):
            return Path(self.location)
        return None

    @property
    def lock_file(self) -> Path | None:
        """The file whose advisory lock lets one process write (None: not a local target)."""
        return None if self.path is None else self.path.with_name(self.path.name + ".lock")

    @property
    def default_data_path(self) -> str | None:
        """Where a new lake keeps its Parquet files unless told otherwise: beside a SQLite
        catalog (`bellwether.sqlite` -> `bellwether.files/`); a PostgreSQL lake has no default."""
        if self.kind == LAKE and self.catalog == SQLITE:
            return str(self.path.with_name(self.path.stem + ".files")) + "/"
        return None

    @property
    def local_folder(self) -> Path | None:
        """The folder of the local file behind the target (None for PostgreSQL and remote
        targets, which have no folder on this machine)."""
        return self.path.parent if self.path is not None else None

    def describe(self) -> str:
        """The target for messages and logs, with any password in a connection string masked."""
        return re.sub(r"(password\s*=\s*)(\S+)", r"\1***", str(self), flags=re.IGNORECASE)


def parse(text: str | Path) -> Target:
    """The target `text` names; relative paths are made absolute against the working directory."""
    raw = str(text).strip()
    if not raw:
        raise TargetError("the warehouse target is empty: give a path or ducklake:sqlite:PATH / ducklake:postgres:CONNINFO")
    if raw.lower().startswith(LAKE_PREFIX):
        rest = raw[len(LAKE_PREFIX):]
        kind, _, where = rest.partition(":")
        kind = kind.lower()
        if kind == SQLITE and where:
            return Target(LAKE, str(Path(where).expanduser().resolve()), SQLITE)
        if kind in (POSTGRES, "postgresql") and where:
            if re.search(r"password\s*=", where, re.IGNORECASE) or re.search(r"://[^/@]*:[^/@]*@", where):
                raise TargetError(
                    "the PostgreSQL connection string holds a password: leave it out and set PGPASSWORD (or use "
                    "~/.pgpass) so that it never appears in logs, audit.runs or Prefect's parameters"
                )
            return Target(LAKE, where.strip(), POSTGRES)
        raise TargetError(
            f"cannot use warehouse {raw!r}: a DuckLake target is ducklake:sqlite:PATH (the catalog in a SQLite file) "
            "or ducklake:postgres:CONNINFO (the catalog in PostgreSQL). A DuckDB-file catalog is not offered: it "
            "has DuckDB's single-writer lock, so readers would be refused during every write"
        )
    if raw == ":memory:" or "://" in raw or raw.startswith(("md:", "motherduck:")):
        return Target(REMOTE, raw)
    return Target(FILE, str(Path(raw).expanduser().resolve()))
