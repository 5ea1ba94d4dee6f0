"""Batch-system clusters (madutils.clusters): the job scripts, the scaling, every refusal.

No batch system is needed: dask-jobqueue only calls ``sbatch`` (``qsub``, ...) when a job is
submitted, and the one test that submits puts a fake ``sbatch`` and ``scancel`` on ``PATH``.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import dask
import psutil
import pytest
import yaml

from madutils.clusters import (
    JOB_QUEUES,
    ClusterSpec,
    cluster_kwargs,
    jobs_for,
    load_cluster_spec,
    make_cluster,
    worker_gpus,
)

pytest.importorskip("dask_jobqueue")

ROOT = Path(__file__).resolve().parents[1]
SLURM_EXAMPLE = ROOT / "examples" / "cluster-slurm.yaml"
PBS_EXAMPLE = ROOT / "examples" / "cluster-pbs.yaml"


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Run in a temporary directory (log directories land there), keep the scheduler's
    dashboard off the fixed port 8787, and fail a test that leaves a child process behind."""
    monkeypatch.chdir(tmp_path)
    before = {child.pid for child in psutil.Process().children(recursive=True)}
    options = {
        f"jobqueue.{queue}.scheduler-options": {"dashboard_address": ":0"} for queue in JOB_QUEUES
    }
    with dask.config.set(options):
        yield
    deadline = time.monotonic() + 10
    while True:
        left = [c for c in psutil.Process().children(recursive=True) if c.pid not in before]
        left = [c for c in left if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not left, f"processes left behind: {left}"


def spec(**overrides) -> ClusterSpec:
    settings = dict(queue="slurm", cores=4, memory="8GB", jobs=3, walltime="01:00:00")
    settings.update(overrides)
    return ClusterSpec(**settings)


def job_script(cluster_spec: ClusterSpec) -> str:
    with make_cluster(cluster_spec, n_runs=0) as cluster:
        assert not cluster.worker_spec  # n_runs=0: nothing scaled, nothing submitted
        return cluster.job_script()


# --- the SLURM example --------------------------------------------------------------------------


def test_slurm_example_job_script_has_everything_the_file_asks_for():
    cluster_spec = load_cluster_spec(SLURM_EXAMPLE)
    script = job_script(cluster_spec)
    header = [line for line in script.splitlines() if line.startswith("#SBATCH")]
    for directive in (
        "#SBATCH -p gpu",
        "#SBATCH -A my-project",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH --gres=gpu:2",
        "#SBATCH -t 04:00:00",
        "#SBATCH --mem=64G",  # 64GiB (64GB would be 64e9 bytes: 60G)
        "#SBATCH --qos=normal",
        "#SBATCH -e dask-logs/madutils-%J.err",
    ):
        assert directive in header, (directive, script)
    lines = script.splitlines()
    worker = next(i for i, line in enumerate(lines) if "distributed.cli.dask_worker" in line)
    setup = [lines.index("module load cuda"), lines.index("source .venv/bin/activate")]
    threads = [lines.index(f"export {name}=4") for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")]
    assert setup == sorted(setup) and max(setup) < min(threads) and max(threads) < worker
    command = lines[worker]
    for argument in (
        "--nthreads 4",
        "--nworkers 2",
        "--resources GPU=1",
        "--preload madutils.clusters",
        "--local-directory $TMPDIR",
    ):
        assert argument in command, (argument, command)
    assert "export MADUTILS_WORKERS_PER_JOB=2" in lines
    assert (Path.cwd() / "dask-logs").is_dir()  # dask-jobqueue creates the log directory


def test_slurm_example_sets_what_its_comments_say():
    cluster_spec = load_cluster_spec(SLURM_EXAMPLE)
    assert (cluster_spec.cores, cluster_spec.gpus, cluster_spec.processes) == (8, 2, 2)
    assert cluster_spec.threads == 4
    assert cluster_spec.setup == ("module load cuda", "source .venv/bin/activate")
    text = SLURM_EXAMPLE.read_text()
    for line in text.splitlines():
        if re.match(r"^[a-z_]+:", line):
            assert "#" in line, f"uncommented key in {SLURM_EXAMPLE.name}: {line!r}"
    mentioned = set(re.findall(r"^#? ?([a-z_]+):", text, flags=re.MULTILINE))
    assert mentioned == {f for f in ClusterSpec.__dataclass_fields__}


def test_scaling_submits_jobs_for_the_runs_and_closing_cancels_them(tmp_path, monkeypatch):
    fake = tmp_path / "bin"
    fake.mkdir()
    submitted = tmp_path / "submitted"
    submitted.mkdir()
    (fake / "sbatch").write_text(
        f'#!/bin/sh\ncp "$1" {submitted}/job-$$.sh\necho "Submitted batch job $$"\n'
    )
    (fake / "scancel").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/cancelled\n')
    for tool in ("sbatch", "scancel"):
        (fake / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")

    cluster_spec = load_cluster_spec(SLURM_EXAMPLE)  # jobs: 4, processes: 2
    assert jobs_for(cluster_spec, 5) == 3
    with make_cluster(cluster_spec, n_runs=5) as cluster:
        assert len(cluster.worker_spec) == 3
        deadline = time.monotonic() + 60
        while len(list(submitted.iterdir())) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        scripts = [path.read_text() for path in submitted.iterdir()]
        assert len(scripts) == 3
        for script in scripts:
            assert cluster.scheduler_address in script
            assert "dummy-name" not in script and "--gres=gpu:2" in script
        job_ids = {path.stem.removeprefix("job-") for path in submitted.iterdir()}
    cancelled = set((tmp_path / "cancelled").read_text().split())
    assert cancelled == job_ids


# --- the other queues ---------------------------------------------------------------------------


def test_pbs_example_job_script():
    script = job_script(load_cluster_spec(PBS_EXAMPLE))
    for line in (
        "#PBS -q workq",
        "#PBS -A my-project",
        "#PBS -l select=1:ncpus=16:mem=30GB",
        "#PBS -l walltime=02:00:00",
        "export OMP_NUM_THREADS=1",
        "source .venv/bin/activate",
    ):
        assert line in script.splitlines(), (line, script)
    assert "--nthreads 1" in script and "--nworkers 16" in script
    assert "--resources" not in script and "--preload" not in script


GPU_QUEUES = {
    "pbs": ["#PBS -q short", "#PBS -A acc", "#PBS -l select=1:ncpus=4:ngpus=2:mem=7630MB",
            "#PBS -l walltime=01:30:20", "#PBS -V"],
    "lsf": ['#BSUB -q short', '#BSUB -P "acc"', "#BSUB -n 4", "#BSUB -W 01:31",
            '#BSUB -gpu "num=2"', "#BSUB -V"],
    "sge": ["#$ -q short", "#$ -A acc", "#$ -l h_rt=01:30:20", "#$ -l gpu=2", "#$ -V"],
}  # fmt: skip


@pytest.mark.parametrize("queue", sorted(GPU_QUEUES))
def test_each_queue_writes_its_own_directives(queue):
    script = job_script(
        spec(queue=queue, partition="short", account="acc", walltime="01:30:20", gpus=2,
             job_directives=["-V"], setup=["module load cuda"])
    )  # fmt: skip
    lines = script.splitlines()
    for line in GPU_QUEUES[queue]:
        assert line in lines, (line, script)
    assert "module load cuda" in lines and "export OMP_NUM_THREADS=2" in lines
    assert "--resources GPU=1" in script and "--nworkers 2" in script


def test_htcondor_job_script():
    script = job_script(
        spec(queue="htcondor", walltime=None, disk="10GB", gpus=1,
             job_directives=["accounting_group = group_mad"], setup=["module load cuda"])
    )  # fmt: skip
    lines = script.splitlines()
    for line in (
        "request_gpus = 1",
        "accounting_group = group_mad",
        "MY.DaskWorkerDisk = 10000000000",
    ):
        assert line in lines, (line, script)
    # HTCondor runs the setup and the exports in the worker's own shell command
    assert "module load cuda; export OMP_NUM_THREADS=4;" in script
    assert "--resources GPU=1" in script and "--preload" not in script


def test_cluster_kwargs_use_the_queue_names_of_dask_jobqueue():
    kwargs = cluster_kwargs(spec(partition="gpu", account="acc", gpus=1, job_directives=["-x"]))
    assert kwargs["queue"] == "gpu" and kwargs["account"] == "acc"
    assert kwargs["job_extra_directives"] == ["--gres=gpu:1", "-x"]
    assert kwargs["worker_extra_args"] == ["--resources", "GPU=1"]
    assert (kwargs["cores"], kwargs["processes"]) == (4, 1)
    assert cluster_kwargs(spec(queue="lsf", account="acc"))["project"] == "acc"
    assert "account" not in cluster_kwargs(spec(queue="sge", account="acc"))


# --- scaling and GPU pinning --------------------------------------------------------------------


@pytest.mark.parametrize(("n_runs", "jobs"), [(0, 0), (1, 1), (2, 1), (3, 2), (8, 4), (100, 4)])
def test_jobs_for_is_ceil_runs_over_processes_capped_at_jobs(n_runs, jobs):
    assert jobs_for(spec(cores=4, processes=2, jobs=4), n_runs) == jobs


def test_jobs_for_refuses_a_negative_number_of_runs():
    with pytest.raises(ValueError, match=r"n_runs must be a non-negative integer .*; got -1"):
        jobs_for(spec(), -1)


def test_default_processes_make_single_threaded_workers_or_one_worker_per_gpu():
    assert (spec(cores=8).processes, spec(cores=8).threads) == (8, 1)
    assert (spec(cores=8, gpus=2).processes, spec(cores=8, gpus=2).threads) == (2, 4)


def test_worker_gpus_gives_each_worker_of_a_job_its_own_gpu():
    environ = {"MADUTILS_WORKERS_PER_JOB": "2", "CUDA_VISIBLE_DEVICES": "4,6"}
    assert worker_gpus("SLURMCluster-3-0", environ) == "4"
    assert worker_gpus("SLURMCluster-3-1", environ) == "6"
    assert worker_gpus("SLURMCluster-3-1", {"MADUTILS_WORKERS_PER_JOB": "2"}) == "1"
    assert worker_gpus("SLURMCluster-3", {}) is None  # one worker per job: nothing to pin
    with pytest.raises(RuntimeError, match="has no GPU of its own"):
        worker_gpus("SLURMCluster-3-2", environ)
    with pytest.raises(RuntimeError, match="must end in -<index>"):
        worker_gpus("worker", environ)


def test_the_preload_pins_a_real_worker_before_it_runs_anything(monkeypatch):
    from distributed import Scheduler, Worker

    monkeypatch.setenv("MADUTILS_WORKERS_PER_JOB", "2")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5,7")  # restored by monkeypatch afterwards

    async def start_worker():
        async with (
            Scheduler(port=0, dashboard_address=":0") as scheduler,
            Worker(scheduler.address, name="job-0-1", nthreads=1, preload=["madutils.clusters"]),
        ):
            return os.environ["CUDA_VISIBLE_DEVICES"]

    assert asyncio.run(start_worker()) == "7"


def test_the_module_imports_without_dask_jobqueue():
    code = "import sys, madutils.clusters; print('dask_jobqueue' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_make_cluster_without_dask_jobqueue_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask_jobqueue", None)
    with pytest.raises(ImportError, match=r"pip install 'madutils\[cluster\]'"):
        make_cluster(spec(), n_runs=1)


# --- refusals -----------------------------------------------------------------------------------

REFUSED = [
    (dict(queue="torque"),
     r"queue must be one of 'slurm', 'pbs', 'lsf', 'sge', 'htcondor'; got 'torque'"),
    (dict(walltime="2h"), r"walltime must be HH:MM:SS; got '2h'"),
    (dict(walltime="01:75:00"), r"walltime must be HH:MM:SS; got '01:75:00'"),
    (dict(walltime="00:00:00"), r"walltime must be longer than 00:00:00"),
    (dict(walltime=7200), r"walltime must be a quoted string 'HH:MM:SS' .*; got 7200"),
    (dict(walltime=None), r"walltime is required for queue 'slurm'"),
    (dict(gpus=-1), r"gpus must be a non-negative integer \(>= 0\); got -1"),
    (dict(gpus=1.5), r"gpus must be a non-negative integer \(>= 0\); got 1.5"),
    (dict(cores=0), r"cores must be a positive integer \(>= 1\); got 0"),
    (dict(cores=True), r"cores must be a positive integer \(>= 1\); got True"),
    (dict(jobs=0), r"jobs must be a positive integer \(>= 1\); got 0"),
    (dict(processes=8), r"processes must be at most cores .*; got processes=8, cores=4"),
    (dict(processes=3), r"processes must divide cores .*; got processes=3, cores=4"),
    (dict(gpus=8),
     r"processes \(its default with gpus\) must be at most cores .*; got processes=8"),
    (dict(gpus=1, processes=2),
     r"processes must equal gpus when gpus > 0 .*; got processes=2, gpus=1"),
    (dict(memory="16"), r"memory must be a size with a unit like '16GB' or '500MB'; got '16'"),
    (dict(memory=16), r"memory must be a size with a unit .*; got 16"),
    (dict(memory="0GB"), r"memory must be a size > 0; got '0GB'"),
    (dict(partition=""), r"partition must be a non-empty string; got ''"),
    (dict(account=1234), r"account must be a non-empty string; got 1234"),
    (dict(disk="10GB"), r"disk is not supported for queue 'slurm'"),
    (dict(queue="htcondor", walltime=None, partition="gpu", disk="1GB"),
     r"partition is not supported for queue 'htcondor'"),
    (dict(queue="htcondor", disk="1GB"), r"walltime is not supported for queue 'htcondor'"),
    (dict(queue="htcondor", walltime=None, account="a", disk="1GB"),
     r"account is not supported for queue 'htcondor'"),
    (dict(queue="htcondor", walltime=None), r"disk is required for queue 'htcondor'"),
    (dict(queue="htcondor", walltime=None, disk="1GB", job_directives=["getenv"]),
     r"job_directives entries for queue 'htcondor' must be 'key = value'; got 'getenv'"),
    (dict(job_directives=["#SBATCH --qos=x"]),
     r"job_directives entries are written without the '#SBATCH' prefix; got '#SBATCH --qos=x'"),
    (dict(job_directives="--qos=x"), r"job_directives must be a list of strings; got '--qos=x'"),
    (dict(setup=["module load cuda\nrm -rf x"]),
     r"setup entries must be non-empty one-line strings"),
    (dict(setup=[""]), r"setup entries must be non-empty one-line strings; got ''"),
]  # fmt: skip


@pytest.mark.parametrize(("overrides", "message"), REFUSED)
def test_cluster_spec_refuses(overrides, message):
    with pytest.raises(ValueError, match=message):
        spec(**overrides)


def write(text: str) -> Path:
    path = Path.cwd() / "cluster.yaml"
    path.write_text(text)
    return path


BASE = "queue: slurm\ncores: 4\nmemory: 8GB\njobs: 2\nwalltime: '01:00:00'\n"
REFUSED_FILES = [
    (BASE + "partiton: gpu\n",
     r"cluster\.yaml: unknown key 'partiton'; allowed keys: account, cores, disk, gpus, interface, "
     r"job_directives, jobs, local_directory, log_directory, memory, partition, processes, queue, "
     r"setup, walltime$"),
    ("queue: slurm\nmemory: 8GB\njobs: 2\n",
     r"cluster\.yaml: missing key 'cores'; required keys: queue, cores, memory, jobs$"),
    (BASE + "setup: [module load cuda\n", r"cluster\.yaml is not valid YAML at line \d+: "),
    (BASE + "  bad indent: 1\n", r"cluster\.yaml is not valid YAML at line \d+: "),
    ("- queue: slurm\n", r"cluster\.yaml must be a mapping of settings \(key: value\); got list$"),
    ("", r"cluster\.yaml must be a mapping of settings \(key: value\); got an empty file$"),
    (BASE.replace("'01:00:00'", "1:00:00"),  # YAML 1.1 sexagesimal: the number 3600
     r"cluster\.yaml: walltime must be a quoted string 'HH:MM:SS' .*; got 3600$"),
    (BASE.replace("'01:00:00'", "2h"), r"cluster\.yaml: walltime must be HH:MM:SS; got '2h'$"),
    (BASE + "gpus: -1\n", r"cluster\.yaml: gpus must be a non-negative integer \(>= 0\); got -1$"),
    (BASE.replace("slurm", "htcondor") + "disk: 1GB\n",
     r"cluster\.yaml: walltime is not supported for queue 'htcondor'"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message"), REFUSED_FILES)
def test_load_cluster_spec_refuses_with_one_line_naming_the_file(text, message):
    path = write(text)
    with pytest.raises(ValueError, match=message) as error:
        load_cluster_spec(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_load_cluster_spec_refuses_a_missing_file():
    with pytest.raises(ValueError, match=r"cluster file .*nowhere\.yaml does not exist$"):
        load_cluster_spec("nowhere.yaml")


def test_load_cluster_spec_reads_lists_as_tuples_and_empty_lists_as_none():
    cluster_spec = load_cluster_spec(write(BASE + "setup:\njob_directives: [--qos=x]\n"))
    assert cluster_spec.setup == () and cluster_spec.job_directives == ("--qos=x",)
    assert yaml.safe_load(BASE)["walltime"] == cluster_spec.walltime
    assert hash(cluster_spec) == hash(
        load_cluster_spec(write(BASE + "job_directives: [--qos=x]\n"))
    )
