"""Prefect's guard on warehouse writers: a global concurrency limit named `warehouse-writer`
with one slot, held by a whole run (nightly or backfill) for as long as it writes.

Why a run-level limit: on one machine the warehouse's lock file already lets one process write
at a time, but runs of a shared Prefect server can start on different machines (and a
MotherDuck warehouse has no lock file). The limit queues them in Prefect, visibly (the UI's
Concurrency page), before they touch the warehouse. Task tags could carry the same limit per
task, at an API round trip per task (about 0.3 s each here, hundreds of them in a backfill);
one slot per run costs one.

Only against a Prefect server (PREFECT_API_URL set, as under `bellwether serve`): a slot's
lease is freed by the server's lease service when its holder dies, and Prefect's in-process
ephemeral mode runs no such service, so there a killed run would hold the slot for good. In
ephemeral mode (cron calling `bellwether run`) the lock file alone keeps writers apart.
The limit is created (1 slot) the first time a run or `serve` needs it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from warehouse.connect import WarehouseBusy

WRITER_LIMIT = "warehouse-writer"
LEASE_S = 60.0  # a dead holder's slot is repossessed after this long


def server_configured() -> bool:
    from prefect.settings import PREFECT_API_URL

    return bool(PREFECT_API_URL.value())


def ensure_writer_limit(limit: int = 1) -> str:
    """Create the global concurrency limit if it is missing; what was done."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            existing = client.read_global_concurrency_limit_by_name(WRITER_LIMIT)
        except ObjectNotFound:
            existing = None
        if existing is not None and existing.limit == limit:
            return f"concurrency limit {WRITER_LIMIT!r}: {limit} slot (already set)"
        client.upsert_global_concurrency_limit_by_name(WRITER_LIMIT, limit)
        return f"concurrency limit {WRITER_LIMIT!r}: {limit} slot (set)"


def _slot_holder(warehouse: str | None) -> str:
    """Prefect does not say which run holds a slot; on this machine the warehouse's lock file
    names the run writing it (the usual holder: a run takes the slot, then the lock)."""
    from warehouse.connect import current_writer

    who = current_writer(warehouse) if warehouse else None
    return f"{who} is writing {warehouse}" if who else "see the UI's Concurrency page"


@contextlib.contextmanager
def writer_slot(*, timeout_s: float, holder: str, warehouse: str | None = None) -> Iterator[None]:
    """Hold the `warehouse-writer` slot (against a Prefect server; a no-op in ephemeral mode).
    Given up on, the message names the run writing `warehouse` when its lock file says."""
    if not server_configured():
        yield
        return
    from prefect.concurrency._asyncio import ConcurrencySlotAcquisitionError
    from prefect.concurrency.sync import concurrency

    def take():
        return concurrency(WRITER_LIMIT, occupy=1, timeout_seconds=timeout_s, lease_duration=LEASE_S, strict=True)

    with contextlib.ExitStack() as stack:
        try:
            try:
                stack.enter_context(take())
            except ConcurrencySlotAcquisitionError:  # no such limit yet: create it, then take it
                ensure_writer_limit()
                stack.enter_context(take())
        except TimeoutError:
            raise WarehouseBusy(
                f"{holder}: another run holds Prefect's {WRITER_LIMIT!r} concurrency slot ({_slot_holder(warehouse)}); "
                f"gave up after waiting {timeout_s:g} s"
            ) from None
        yield
