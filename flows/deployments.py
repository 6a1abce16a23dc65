"""The Prefect deployments `bellwether serve` serves, and the writer concurrency limit.

- `nightly/nightly`: cron `30 18 * * 1-5` in America/New_York (after the 16:00 close, 13:00 on
  early-close days), with `scheduled=True`: the run loads the session of the day it was
  scheduled for, and on a market holiday logs that the NYSE was closed and ends successfully.
- `backfill/backfill`: no schedule; run it by hand from the UI or with
  `prefect deployment run 'backfill/backfill' --param start=2024-01-01 --param end=2024-03-31`.

Both carry the serve command's source, folder, warehouse and universe as default parameters
(a run may override them). Each run holds the one slot of Prefect's `warehouse-writer` global
concurrency limit while it writes (flows/writers.py), so two runs never write at the same time
even on different machines; on one machine the warehouse's lock file keeps them apart too
(a run waits, then fails, with a message naming the holder).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from prefect.schedules import Cron


NIGHTLY_CRON = "30 18 * * 1-5"
MARKET_TZ = "America/New_York"
SERVER_START_TIMEOUT_S = 120.0


class ServeError(RuntimeError):
    """The Prefect server could not be found or started."""


def writer_defaults(*, source: str, path: str | None, warehouse: str, universe: str) -> dict:
    return {k: v for k, v in {"source": source, "path": path, "warehouse": warehouse, "universe": universe}.items() if v is not None}


def make_deployments(*, source: str, path: str | None, warehouse: str, universe: str) -> list:
    """The two RunnerDeployments (not yet registered with any server).

    Their entrypoints are module paths (`flows.nightly:nightly`), so the runs `serve` starts in
    fresh processes find the flows from any working directory. Those processes read the task
    runner from BELLWETHER_RUNNER / BELLWETHER_DASK_ADDRESS, which `bellwether serve --runner`
    sets for them."""
    from prefect.deployments.runner import EntrypointType

    from flows.backfill import backfill
    from flows.nightly import nightly

    defaults = writer_defaults(source=source, path=path, warehouse=warehouse, universe=universe)
    nightly_deployment = nightly.to_deployment(
        name="nightly",
        schedules=[Cron(NIGHTLY_CRON, timezone=MARKET_TZ)],
        parameters=defaults | {"scheduled": True},
        description="Every weekday at 18:30 New York time: load the day's session, build and check the marts.",
        tags=["bellwether", "nightly"],
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    backfill_deployment = backfill.to_deployment(
        name="backfill",
        parameters=defaults,
        description="By hand: load a range of past sessions in chunks (resumable), then rebuild the marts once.",
        tags=["bellwether", "backfill"],
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    return [nightly_deployment, backfill_deployment]


def _healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url.rstrip('/')}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex((host, port)) != 0


@contextlib.contextmanager
def prefect_api(port: int = 4200, host: str = "127.0.0.1", log_dir: Path | None = None) -> Iterator[tuple[str, bool]]:
    """The Prefect API to serve against: (url, started here).

    With PREFECT_API_URL set (a Prefect server or Cloud), that. Otherwise a local
    `prefect server start` is started for as long as the block runs: schedules fire only where
    Prefect's scheduler service runs, which its in-process ephemeral mode does not do.
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    configured = PREFECT_API_URL.value()
    if configured:
        if not _healthy(configured):
            raise ServeError(f"PREFECT_API_URL is {configured}, but no Prefect server answers there")
        yield configured, False
        return
    url = f"http://{host}:{port}/api"
    if not _port_free(host, port):
        if _healthy(url):
            raise ServeError(
                f"a Prefect server already runs at {url}: use it with PREFECT_API_URL={url} bellwether serve"
            )
        raise ServeError(f"port {port} on {host} is taken by something else: choose another with --port")
    log_dir = log_dir or Path(os.environ.get("PREFECT_HOME", Path.home() / ".prefect"))
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / "bellwether-serve-server.log"
    prefect_bin = Path(sys.executable).with_name("prefect")
    command = [str(prefect_bin), "server", "start", "--host", host, "--port", str(port)]
    with open(log_path, "ab") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not _healthy(url):
            if server.poll() is not None:
                raise ServeError(f"the local Prefect server exited with code {server.returncode}: see {log_path}")
            if time.monotonic() > deadline:
                raise ServeError(f"the local Prefect server did not answer within {SERVER_START_TIMEOUT_S:g} s: see {log_path}")
            time.sleep(0.5)
        previous = os.environ.get("PREFECT_API_URL")
        os.environ["PREFECT_API_URL"] = url  # for the flow-run processes serve starts
        try:
            with temporary_settings(updates={PREFECT_API_URL: url}):
                yield url, True
        finally:
            if previous is None:
                os.environ.pop("PREFECT_API_URL", None)
            else:
                os.environ["PREFECT_API_URL"] = previous
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def serve(deployments: list) -> None:
    """Register the deployments and run them until SIGTERM / Ctrl-C (blocking).

    On shutdown Prefect pauses the served schedules (nothing piles up while no one can run
    them); serving again resumes them. Sessions missed meanwhile are loaded by the next night's
    look-back (5 sessions by default) or by a backfill."""
    from prefect import serve as prefect_serve

    prefect_serve(*deployments, print_starting_message=False)
