"""Batch-system clusters for sweeps: a dask-jobqueue cluster built from a small YAML file.

A sweep (:func:`madutils.analysis.sweep.run_sweep`) runs each of its runs as one Dask task; this
module says where the workers come from when they are jobs of a batch system (SLURM, PBS, LSF,
SGE, HTCondor). It is about the job script only: which partition, account, cores, memory, GPUs
and wall time a job asks for, what runs before the worker starts, and how many jobs to start.
It does not make the ``distributed.Client`` and does not submit runs (the caller does both, and
closes the cluster).

Every job runs ``processes`` Dask workers of ``cores // processes`` threads each, and the job
script exports ``OMP_NUM_THREADS`` (and MKL's and OpenBLAS's) to that number, so that torch
uses the worker's own cores only: torch on a shared core with two threads is many times slower.
Without GPUs a worker is single-threaded by default (``processes = cores``). With GPUs every
worker holds exactly one GPU (``processes = gpus``) and advertises the Dask resource ``GPU=1``,
which is what a GPU run asks for; on a job with several GPUs each worker is pinned to its own
one by :func:`dask_setup` (a worker ``--preload`` hook).

``dask-jobqueue`` is an optional dependency (``pip install 'madutils[cluster]'``): this module
imports without it, and :func:`make_cluster` says how to install it.
"""

from __future__ import annotations

import importlib
import math
import os
import re
from dataclasses import dataclass, fields
from pathlib import Path

import yaml
from dask.utils import parse_bytes

from madutils._validation import check_choice, check_nonnegative_int, check_positive_int

__all__ = [
    "JOB_QUEUES",
    "ClusterSpec",
    "cluster_kwargs",
    "dask_setup",
    "jobs_for",
    "load_cluster_spec",
    "make_cluster",
    "worker_gpus",
]

JOB_QUEUES: dict[str, str] = {
    "slurm": "SLURMCluster",
    "pbs": "PBSCluster",
    "lsf": "LSFCluster",
    "sge": "SGECluster",
    "htcondor": "HTCondorCluster",
}
"""The batch systems madutils supports, by name: the ``dask_jobqueue`` class of each."""

# The settings a batch system has no place for in dask-jobqueue 0.9.0 (HTCondor has no
# queue, no account and no wall-time directive; its jobs instead need a scratch disk size).
_UNSUPPORTED: dict[str, tuple[str, ...]] = {
    "slurm": ("disk",),
    "pbs": ("disk",),
    "lsf": ("disk",),
    "sge": ("disk",),
    "htcondor": ("partition", "account", "walltime"),
}
_HINTS = {
    ("htcondor", "account"): "charge jobs with job_directives: ['accounting_group = NAME']",
    ("htcondor", "walltime"): "HTCondor has no wall-time directive",
    ("htcondor", "partition"): "HTCondor matches jobs to machines, it has no queues",
}
_DIRECTIVE_PREFIX = {"slurm": "#SBATCH", "pbs": "#PBS", "lsf": "#BSUB", "sge": "#$"}
_WALLTIME = re.compile(r"^(\d+):([0-5]\d):([0-5]\d)$")
_SIZE = re.compile(r"^\d+(\.\d+)?\s*[kKMGTP]i?B$")
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
# Read by dask_setup on the worker: how many workers share the job (and so its GPUs).
_WORKERS_PER_JOB = "MADUTILS_WORKERS_PER_JOB"


@dataclass(frozen=True)
class ClusterSpec:
    """What each batch job asks for, and how many jobs a sweep may start.

    Parameters
    ----------
    queue : str
        The batch system, one of :data:`JOB_QUEUES`: ``"slurm"``, ``"pbs"``, ``"lsf"``,
        ``"sge"`` or ``"htcondor"``.
    cores : int
        CPU cores per job (>= 1).
    memory : str
        Memory per job, with a unit: ``"16GB"``, ``"500MB"``, ``"32GiB"``; the job's workers
        share it evenly.
    jobs : int
        The most jobs to start at once (>= 1); a sweep with fewer runs starts fewer
        (:func:`jobs_for`).
    walltime : str or None
        The longest a job may run, ``"HH:MM:SS"``. Required except for HTCondor, which has no
        wall-time directive (refused there).
    partition : str or None
        The queue (SLURM: the partition) the jobs go to; ``None``: the system's default.
        Not for HTCondor.
    account : str or None
        The account the jobs are charged to (SLURM and PBS ``-A``, SGE ``-A``, LSF's project
        ``-P``); ``None``: your default. Not for HTCondor (use ``job_directives:
        ["accounting_group = NAME"]``).
    processes : int or None
        Dask worker processes per job, of ``cores // processes`` threads each; must divide
        ``cores``. ``None``: ``cores`` (single-threaded workers), or ``gpus`` when the job has
        GPUs, where it must equal ``gpus`` (one worker per GPU).
    gpus : int
        GPUs per job (>= 0). With GPUs every worker advertises the Dask resource ``GPU=1``.
    job_directives : tuple of str
        Extra scheduler lines, without their prefix (``"--qos=high"`` becomes
        ``#SBATCH --qos=high``); for HTCondor, submit-file lines ``"key = value"``.
    setup : tuple of str
        Shell lines run in the job before the worker starts (``"module load cuda"``,
        ``"source .venv/bin/activate"``).
    local_directory : str or None
        The workers' scratch directory on the node (``"$TMPDIR"``: expanded on the node).
    log_directory : str or None
        Where the batch system writes the jobs' output; created when the cluster is made.
    interface : str or None
        The network interface the scheduler and the workers talk over (``"ib0"``);
        ``None``: the default one.
    disk : str or None
        Scratch disk per job (``"10GB"``); HTCondor only, and required there.

    Raises
    ------
    ValueError
        If a setting is missing, of the wrong type or out of range, or not supported by
        ``queue``; the message names the setting and what is allowed.
    """

    queue: str
    cores: int
    memory: str
    jobs: int
    walltime: str | None = None
    partition: str | None = None
    account: str | None = None
    processes: int | None = None
    gpus: int = 0
    job_directives: tuple[str, ...] = ()
    setup: tuple[str, ...] = ()
    local_directory: str | None = None
    log_directory: str | None = None
    interface: str | None = None
    disk: str | None = None

    def __post_init__(self):
        check_choice(self.queue, "queue", JOB_QUEUES)
        for name in _UNSUPPORTED[self.queue]:
            if getattr(self, name) is not None:
                hint = _HINTS.get((self.queue, name), f"{self.queue} jobs have no {name} setting")
                raise ValueError(
                    f"{name} is not supported for queue {self.queue!r}; remove it ({hint})"
                )
        cores = check_positive_int(self.cores, "cores")
        jobs = check_positive_int(self.jobs, "jobs")
        gpus = check_nonnegative_int(self.gpus, "gpus")
        _check_size(self.memory, "memory")
        if self.queue == "htcondor":
            if self.disk is None:
                raise ValueError(
                    "disk is required for queue 'htcondor' (scratch disk per job, e.g. '10GB')"
                )
            _check_size(self.disk, "disk")
        else:
            if self.walltime is None:
                raise ValueError(
                    f"walltime is required for queue {self.queue!r} (HH:MM:SS, e.g. '04:00:00')"
                )
            _check_walltime(self.walltime)
        for name in ("partition", "account", "local_directory", "log_directory", "interface"):
            _check_optional_string(getattr(self, name), name)

        if self.processes is None:
            processes, default = (gpus, " (its default with gpus)") if gpus else (cores, "")
        else:
            processes, default = check_positive_int(self.processes, "processes"), ""
        if processes > cores:
            raise ValueError(
                f"processes{default} must be at most cores (each worker needs a core); "
                f"got processes={processes}, cores={cores}"
            )
        if cores % processes:
            raise ValueError(
                f"processes{default} must divide cores (each worker gets cores // processes "
                f"threads); got processes={processes}, cores={cores}"
            )
        if gpus and processes != gpus:
            raise ValueError(
                f"processes must equal gpus when gpus > 0 (one worker per GPU; a GPU run asks "
                f"for GPU=1); got processes={processes}, gpus={gpus}"
            )

        directives = _string_lines(self.job_directives, "job_directives")
        prefix = _DIRECTIVE_PREFIX.get(self.queue)
        for line in directives:
            if line.startswith("#"):
                raise ValueError(
                    f"job_directives entries are written without the {prefix or '#'!r} prefix; "
                    f"got {line!r}"
                )
            if self.queue == "htcondor" and "=" not in line:
                raise ValueError(
                    "job_directives entries for queue 'htcondor' must be 'key = value'; "
                    f"got {line!r}"
                )
        setup = _string_lines(self.setup, "setup")

        for name, value in (
            ("cores", cores),
            ("jobs", jobs),
            ("gpus", gpus),
            ("processes", processes),
            ("job_directives", directives),
            ("setup", setup),
        ):
            object.__setattr__(self, name, value)

    @property
    def threads(self) -> int:
        """Threads per worker: ``cores // processes``."""
        return self.cores // self.processes


def _check_size(value, name: str) -> None:
    if not isinstance(value, str) or not _SIZE.match(value.strip()):
        raise ValueError(f"{name} must be a size with a unit like '16GB' or '500MB'; got {value!r}")
    if parse_bytes(value) < 1:
        raise ValueError(f"{name} must be a size > 0; got {value!r}")


def _check_walltime(value) -> None:
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(f"walltime must be a quoted string 'HH:MM:SS' XX; got {value!r}")
    match = _WALLTIME.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"walltime must be HH:MM:SS; got {value!r}")
    if _seconds(value) == 0:
        raise ValueError(f"walltime must be longer than 00:00:00; got {value!r}")


def _seconds(walltime: str) -> int:
    hours, minutes, seconds = (int(part) for part in walltime.split(":"))
    return 3600 * hours + 60 * minutes + seconds


def _check_optional_string(value, name: str) -> None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ValueError(f"{name} must be a non-empty string; got {value!r}")


def _string_lines(value, name: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ValueError(f"{name} must be a list of strings; got {value!r}")
    for line in value:
        if not isinstance(line, str) or not line.strip() or "\n" in line:
            raise ValueError(f"{name} entries must be non-empty one-line strings; got {line!r}")
    return tuple(value)


_REQUIRED = ("queue", "cores", "memory", "jobs")
_KEYS = tuple(sorted(f.name for f in fields(ClusterSpec)))


def load_cluster_spec(path: str | Path) -> ClusterSpec:
    """Read a cluster file: a YAML mapping of :class:`ClusterSpec`'s settings.

    Parameters
    ----------
    path : str or pathlib.Path
        The YAML file (see ``examples/cluster-slurm.yaml``).

    Returns
    -------
    ClusterSpec

    Raises
    ------
    ValueError
        If the file is missing or not valid YAML, is not a mapping, has an unknown key or
        lacks a required one, or a setting is not valid; the one-line message names the file.
    """
    file = Path(path)
    try:
        text = file.read_text()
    except FileNotFoundError:
        raise ValueError(f"cluster file {file} does not exist") from None
    except OSError as error:
        raise ValueError(f"cluster file {file} cannot be read: {error.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or type(error).__name__
        raise ValueError(f"cluster file {file} is not valid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise ValueError(
            f"cluster file {file} must be a mapping of settings (key: value); "
            f"got {type(data).__name__ if data is not None else 'an empty file'}"
        )
    for key in data:
        if key not in _KEYS:
            raise ValueError(
                f"cluster file {file}: unknown key {key!r}; allowed keys: {', '.join(_KEYS)}"
            )
    for key in _REQUIRED:
        if key not in data:
            raise ValueError(
                f"cluster file {file}: missing key {key!r}; required keys: {', '.join(_REQUIRED)}"
            )
    settings = dict(data)
    for key in ("job_directives", "setup"):
        if settings.get(key) is None:
            settings.pop(key, None)
    try:
        return ClusterSpec(**settings)
    except ValueError as error:
        raise ValueError(f"cluster file {file}: {error}") from None


def jobs_for(spec: ClusterSpec, n_runs: int) -> int:
    """The jobs a sweep of ``n_runs`` runs starts: ``min(spec.jobs, ceil(n_runs / processes))``.

    Each job runs ``spec.processes`` workers and each run is one task, so more jobs than that
    would only sit idle.
    """
    n_runs = check_nonnegative_int(n_runs, "n_runs")
    return min(spec.jobs, math.ceil(n_runs / spec.processes))


def _lsf_walltime(walltime: str) -> str:
    # LSF's -W takes [hours:]minutes: round the seconds up to a whole minute.
    minutes = math.ceil(_seconds(walltime) / 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def cluster_kwargs(spec: ClusterSpec) -> dict:
    """The keyword arguments of ``dask_jobqueue.<JOB_QUEUES[spec.queue]>`` for ``spec``.

    Parameters
    ----------
    spec : ClusterSpec

    Returns
    -------
    dict
        ``cores``, ``processes``, ``memory``, ``job_script_prologue`` (the setup lines, then
        the thread variables), ``job_extra_directives`` (the GPUs the queue's way, then
        ``spec.job_directives``), ``worker_extra_args`` (``--resources GPU=1`` with GPUs) and
        the queue's own names for the partition, account and wall time.
    """
    threads = spec.threads
    prologue = list(spec.setup)
    prologue += [f"export {name}={threads}" for name in _THREAD_VARIABLES]
    directives = []
    worker_args = []
    kwargs = {
        "cores": spec.cores,
        "processes": spec.processes,
        "memory": spec.memory,
        "job_name": "madutils",
    }
    if spec.gpus:
        # One GPU per worker (ClusterSpec checks processes == gpus): a GPU run asks for GPU=1.
        worker_args += ["--resources", f"GPU={spec.gpus // spec.processes}"]
        if spec.processes > 1:
            prologue.append(f"export {_WORKERS_PER_JOB}={spec.processes}")
            worker_args += ["--preload", __name__]
    if spec.queue == "slurm":
        kwargs.update(queue=spec.partition, account=spec.account, walltime=spec.walltime)
        if spec.gpus:
            directives.append(f"--gres=gpu:{spec.gpus}")
    elif spec.queue == "pbs":
        kwargs.update(queue=spec.partition, account=spec.account, walltime=spec.walltime)
        if spec.gpus:
            # PBS Pro asks for GPUs inside the select statement, next to the cores and memory.
            memory = _jobqueue("pbs").pbs_format_bytes_ceil(parse_bytes(spec.memory))
            kwargs["resource_spec"] = f"select=1:ncpus={spec.cores}:ngpus={spec.gpus}:mem={memory}"
    elif spec.queue == "lsf":
        kwargs.update(
            queue=spec.partition, project=spec.account, walltime=_lsf_walltime(spec.walltime)
        )
        if spec.gpus:
            directives.append(f'-gpu "num={spec.gpus}"')
    elif spec.queue == "sge":
        kwargs.update(queue=spec.partition, walltime=spec.walltime)
        if spec.account is not None:
            directives.append(f"-A {spec.account}")
        if spec.gpus:
            directives.append(f"-l gpu={spec.gpus}")
    if spec.queue == "htcondor":
        kwargs["disk"] = spec.disk
        extra = {}
        if spec.gpus:
            extra["request_gpus"] = spec.gpus
        for line in spec.job_directives:
            key, value = line.split("=", 1)
            extra[key.strip()] = value.strip()
        kwargs["job_extra_directives"] = extra
    else:
        kwargs["job_extra_directives"] = directives + list(spec.job_directives)
    kwargs["job_script_prologue"] = prologue
    kwargs["worker_extra_args"] = worker_args
    if spec.local_directory is not None:
        kwargs["local_directory"] = spec.local_directory
    if spec.log_directory is not None:
        kwargs["log_directory"] = os.path.expanduser(spec.log_directory)
    if spec.interface is not None:
        kwargs["interface"] = spec.interface
    return {key: value for key, value in kwargs.items() if value is not None}


def _jobqueue(submodule: str | None = None):
    name = "dask_jobqueue" + (f".{submodule}" if submodule else "")
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ImportError(
            "clusters need dask-jobqueue; install it with: pip install 'madutils[cluster]'"
        ) from None


def make_cluster(spec: ClusterSpec, n_runs: int):
    """Build the dask-jobqueue cluster of ``spec`` and scale it for a sweep of ``n_runs`` runs.

    The scheduler starts here, in this process; the jobs (:func:`jobs_for` of them) are
    submitted in the background by the cluster's event loop, so a failing ``sbatch`` is
    logged, not raised. The caller makes the ``distributed.Client`` and closes both (closing
    the cluster cancels its jobs).

    Parameters
    ----------
    spec : ClusterSpec
    n_runs : int
        The number of runs of the sweep (>= 0; 0 starts no job).

    Returns
    -------
    dask_jobqueue.JobQueueCluster
        The cluster; ``cluster.job_script()`` shows the script each job runs.

    Raises
    ------
    ImportError
        If dask-jobqueue is not installed.
    """
    jobs = jobs_for(spec, n_runs)
    cluster = getattr(_jobqueue(), JOB_QUEUES[spec.queue])(**cluster_kwargs(spec))
    if jobs:
        cluster.scale(jobs=jobs)
    return cluster


def worker_gpus(worker_name: str, environ: dict | None = None) -> str | None:
    """The ``CUDA_VISIBLE_DEVICES`` of one worker of a job with several GPUs, or ``None``.

    The workers of a job are named ``<job name>-<index>``; worker ``index`` gets the job's
    GPU number ``index``: the ``index``-th entry of the job's ``CUDA_VISIBLE_DEVICES`` (set by
    the batch system), or ``index`` itself when that is unset.

    Parameters
    ----------
    worker_name : str
        The Dask worker's name.
    environ : dict or None
        The environment; ``None``: ``os.environ``.

    Returns
    -------
    str or None
        ``None`` when the job runs a single worker (no pinning needed).

    Raises
    ------
    RuntimeError
        If the name has no index, or the job sees fewer GPUs than it has workers.
    """
    environ = os.environ if environ is None else environ
    workers = int(environ.get(_WORKERS_PER_JOB, "1"))
    if workers <= 1:
        return None
    head, _, index = str(worker_name).rpartition("-")
    if not head or not index.isdigit():
        raise RuntimeError(
            f"worker name must end in -<index> on a job with {workers} workers; got {worker_name!r}"
        )
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    devices = visible.split(",") if visible else [str(i) for i in range(workers)]
    if int(index) >= len(devices):
        raise RuntimeError(
            f"worker {worker_name!r} has no GPU of its own: the job has {workers} workers "
            f"but CUDA_VISIBLE_DEVICES={visible!r}"
        )
    return devices[int(index)]


def dask_setup(worker) -> None:
    """Worker ``--preload`` hook: pin this worker to its own GPU of the job.

    Runs in the worker process before it registers with the scheduler (so before any task,
    and before torch initialises CUDA); see :func:`worker_gpus`.
    """
    devices = worker_gpus(worker.name)
    if devices is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = devices
