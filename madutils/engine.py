"""Where the runs of a sweep execute: in this process, or as tasks of a Dask cluster.

:func:`madutils.analysis.run_sweep` asks :class:`Engine` where to run. In order:

1. ``cluster=PATH`` (``--cluster PATH``, ``$MADUTILS_CLUSTER``): a job-queue cluster (SLURM,
   PBS, LSF, SGE, HTCondor) built by dask-jobqueue from a YAML file
   (:mod:`madutils.clusters`), scaled to the sweep's size and closed after it;
2. ``scheduler="tcp://host:8786"`` (``--scheduler``, ``$MADUTILS_SCHEDULER``): an existing
   Dask cluster, whatever started it;
3. ``workers=N`` (``--workers N``, ``$MADUTILS_WORKERS``): a ``LocalCluster`` of ``N``
   single-threaded worker processes, started on first use and kept for the rest of the
   process (a notebook's sweeps share it), stopped when the process exits;
4. nothing: one run after another in this process, as a plain loop.

Arguments win over environment variables, so the runner and ``madutils book`` reach every
``run_sweep`` of a chapter by setting the environment of its kernel.

Workers are single-threaded on purpose: torch with 2 threads on a 2-core machine is several
times slower whenever another process computes at the same time, and independent runs in
separate processes use every core without that barrier. A run that asks for a GPU
(``device="cuda"``) is submitted with the Dask resource ``GPU=1`` and so goes only to a
worker that advertises one (a local worker does when CUDA is available).
"""

from __future__ import annotations

import atexit
import contextlib
import os
from dataclasses import dataclass

from madutils._validation import check_positive_int

__all__ = [
    "ENV_CLUSTER",
    "ENV_SCHEDULER",
    "ENV_WORKERS",
    "Engine",
    "engine_client",
    "engine_environment",
    "environment_variables",
    "shared_engine",
]

ENV_WORKERS = "MADUTILS_WORKERS"
ENV_SCHEDULER = "MADUTILS_SCHEDULER"
ENV_CLUSTER = "MADUTILS_CLUSTER"

# local clusters and scheduler clients kept for the rest of the process, by their settings
_KEPT: dict[tuple, object] = {}


@dataclass(frozen=True)
class Engine:
    """Where a sweep runs; see the module documentation for the order.

    Parameters
    ----------
    workers : int or None
        Worker processes of a local cluster.
    scheduler : str or None
        Address of an existing Dask scheduler.
    cluster : str or None
        A job-queue cluster file (YAML, see :mod:`madutils.clusters`).
    """

    workers: int | None = None
    scheduler: str | None = None
    cluster: str | None = None

    def __post_init__(self):
        if self.workers is not None:
            check_positive_int(self.workers, "workers")
        for name in ("scheduler", "cluster"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ValueError(f"{name} must be a non-empty string or None; got {value!r}")
        given = [n for n in ("workers", "scheduler", "cluster") if getattr(self, n) is not None]
        if len(given) > 1:
            raise ValueError(f"give at most one of workers, scheduler, cluster; got {given}")

    @classmethod
    def from_settings(
        cls, workers: int | None = None, scheduler: str | None = None, cluster: str | None = None
    ) -> Engine:
        """The engine of these arguments, or of the environment when none is given."""
        if workers is None and scheduler is None and cluster is None:
            cluster = os.environ.get(ENV_CLUSTER) or None
            scheduler = None if cluster else os.environ.get(ENV_SCHEDULER) or None
            text = None if cluster or scheduler else os.environ.get(ENV_WORKERS) or None
            if text is not None:
                try:
                    workers = int(text)
                except ValueError:
                    raise ValueError(
                        f"{ENV_WORKERS} must be a positive integer; got {text!r}"
                    ) from None
        return cls(workers=workers, scheduler=scheduler, cluster=cluster)

    @property
    def sequential(self) -> bool:
        """Whether runs execute one after another in this process."""
        return self.workers is None and self.scheduler is None and self.cluster is None

    def describe(self) -> str:
        """One phrase for messages: where the runs go."""
        if self.cluster is not None:
            return f"the job-queue cluster of {self.cluster}"
        if self.scheduler is not None:
            return f"the Dask scheduler at {self.scheduler}"
        if self.workers is not None:
            return f"a local cluster of {self.workers} single-threaded worker process(es)"
        return "this process, one run after another"

    def environment(self) -> dict[str, str]:
        """The environment variables that make a child process (a notebook's kernel) use this
        engine."""
        if self.cluster is not None:
            return {ENV_CLUSTER: self.cluster}
        if self.scheduler is not None:
            return {ENV_SCHEDULER: self.scheduler}
        if self.workers is not None:
            return {ENV_WORKERS: str(self.workers)}
        return {}


def _local_resources() -> dict[str, float]:
    import torch

    return {"GPU": 1} if torch.cuda.is_available() else {}


def _close_kept() -> None:
    for client, cluster in list(_KEPT.values()):
        with contextlib.suppress(Exception):
            client.close()
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close()
    _KEPT.clear()


def _kept_client(key: tuple, start):
    """The running client kept under ``key``, or a new one from ``start()``, then kept."""
    entry = _KEPT.get(key)
    if entry is not None and entry[0].status == "running":
        return entry[0]
    client, cluster = start()
    if not _KEPT:
        atexit.register(_close_kept)
    _KEPT[key] = (client, cluster)
    return client


@contextlib.contextmanager
def engine_client(engine: Engine, n_runs: int, *, announce: bool = True):
    """A ``distributed.Client`` for ``engine`` (``None`` when it is sequential).

    Local clusters and scheduler connections are kept for the rest of the process; a
    job-queue cluster is started for this sweep, scaled to ``n_runs`` and closed after it.
    With ``announce``, the dashboard address is printed (for every sweep that uses the
    cluster, whether it was started here or earlier).
    """
    if engine.sequential:
        yield None
        return
    from distributed import Client

    if engine.cluster is not None:
        from madutils.clusters import load_cluster_spec, make_cluster

        cluster = make_cluster(load_cluster_spec(engine.cluster), n_runs=n_runs)
        client = Client(cluster)
        if announce:
            print(f"Dask dashboard: {client.dashboard_link} ({engine.describe()})")
        try:
            yield client
        finally:
            client.close()
            cluster.close()
        return
    if engine.scheduler is not None:

        def connect():
            return Client(engine.scheduler, timeout="30s"), None

        client = _kept_client(("scheduler", engine.scheduler), connect)
    else:

        def start():
            from distributed import LocalCluster

            cluster = LocalCluster(
                n_workers=engine.workers,
                threads_per_worker=1,
                processes=True,
                resources=_local_resources(),
                dashboard_address=":0",
            )
            return Client(cluster), cluster

        client = _kept_client(("local", engine.workers), start)
    if announce:
        print(f"Dask dashboard: {client.dashboard_link} ({engine.describe()})")
    yield client


@contextlib.contextmanager
def environment_variables(values: dict[str, str | None]):
    """Set (a string) or remove (``None``) environment variables for the ``with`` block and
    restore them after it; child processes started inside inherit them."""
    saved = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def engine_environment(engine: Engine | None):
    """Set the environment variables of ``engine`` for the ``with`` block (child processes,
    such as a notebook's kernel, inherit them); ``None`` leaves the environment alone."""
    if engine is None:
        yield
        return
    values = dict.fromkeys((ENV_WORKERS, ENV_SCHEDULER, ENV_CLUSTER))
    with environment_variables({**values, **engine.environment()}):
        yield


def shared_engine(engine: Engine | None) -> Engine | None:
    """An engine that several processes can share: a local cluster is started here (once)
    and handed on as its scheduler's address; other engines are returned as they are.

    ``madutils book --workers N`` uses this, so that every chapter's kernel joins one
    cluster instead of starting its own.
    """
    if engine is None or engine.workers is None:
        return engine
    with engine_client(engine, n_runs=engine.workers) as client:
        return Engine(scheduler=client.scheduler.address)  # the dashboard was printed here
