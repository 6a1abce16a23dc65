"""Where the ingestion fan-out runs: threads in this process (default) or a Dask cluster.

Only fetching fans out. Fetch tasks are submitted to the task runner; their batches come back
to the flow, which loads them one at a time through the single warehouse writer. So with Dask
the workers fetch and the flow still writes alone.

- `threads`: Prefect's ThreadPoolTaskRunner with a bounded pool (its default is unbounded).
- `dask`: prefect-dask's DaskTaskRunner. Without an address it starts a LocalCluster of
  `workers` in-process workers (`processes=False`: in Prefect's local ephemeral mode, worker
  processes would each start a Prefect server of their own); its dashboard listens on a
  free port of 127.0.0.1.
  With `address` (`tcp://host:8786`) it uses an existing scheduler: then the workers need this
  project installed and PREFECT_API_URL pointing at the Prefect server the flow reports to.
"""

from __future__ import annotations

RUNNERS = ("threads", "dask")
DEFAULT_THREADS = 4


def task_runner(kind: str = "threads", *, address: str | None = None, workers: int = 2, threads: int = DEFAULT_THREADS):
    if kind == "threads":
        if address:
            raise ValueError("--dask-address needs --runner dask")
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=threads)
    if kind == "dask":
        from prefect_dask import DaskTaskRunner

        if address:
            return DaskTaskRunner(address=address)
        if workers < 1:
            raise ValueError("a Dask LocalCluster needs at least 1 worker")
        return DaskTaskRunner(
            cluster_class="distributed.LocalCluster",
            cluster_kwargs={
                "n_workers": workers, "threads_per_worker": 1, "processes": False,
                "dashboard_address": "127.0.0.1:0",
            },
        )
    raise ValueError(f"unknown runner {kind!r}: choose {' or '.join(RUNNERS)}")
