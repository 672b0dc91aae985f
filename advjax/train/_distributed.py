"""Multi-host runs on JAX's multi-controller runtime: the same program on every host, one
`jax.distributed.initialize()` each, one mesh over all devices.

`initialize_distributed` starts the runtime from explicit settings (coordinator address,
process count, process id) or lets JAX detect the cluster: SLURM (`srun`), Open MPI
(`mpirun`) and Cloud TPU pod slices are detected by JAX itself
(`jax.distributed.initialize()` with no arguments); this module only decides whether to
call it. The training loop then feeds each process's shard and writes files from process
0 only (`is_primary`).
"""

import os
from typing import Dict, Optional

import jax

DISTRIBUTED_MODES = ("auto", "on", "off")


def detect_cluster(environ: Optional[Dict[str, str]] = None) -> Optional[str]:
  """The launcher of a multi-process job seen in the environment, or None.

  "slurm" when SLURM started more than one task (`SLURM_JOB_ID`, `SLURM_NTASKS` > 1);
  "openmpi" when `mpirun` started more than one rank (`OMPI_COMM_WORLD_SIZE` > 1); "tpu"
  when a TPU VM lists more than one worker (`TPU_WORKER_HOSTNAMES` with a comma). A
  single task or rank is a single-process run.
  """
  env = os.environ if environ is None else environ

  def count(key):
    try:
      return int(env.get(key, "1"))
    except ValueError:
      return 1

  if env.get("SLURM_JOB_ID") and count("SLURM_NTASKS") > 1:
    return "slurm"
  if count("OMPI_COMM_WORLD_SIZE") > 1:
    return "openmpi"
  if "," in env.get("TPU_WORKER_HOSTNAMES", ""):
    return "tpu"
  return None


def initialize_distributed(
  mode: str = "auto",
  *,
  coordinator_address: str = "",
  num_processes: int = 0,
  process_id: int = -1,
  environ: Optional[Dict[str, str]] = None,
) -> str:
  """Starts JAX's multi-process runtime when the job has several processes.

  Call it first in the program, before any JAX computation, on every host.

  Args:
    mode: "auto": explicit settings if given, else JAX's own detection when
      `detect_cluster` sees a multi-process launcher, else a single process; "on": always
      initialize (explicit settings or JAX's detection, e.g. on a TPU pod slice); "off":
      never (a single process).
    coordinator_address: "host:port" of process 0 (explicit launch).
    num_processes: the number of processes (explicit launch).
    process_id: this process's id in [0, num_processes) (explicit launch).
    environ: the environment to inspect (default os.environ).

  Returns:
    What was done, for the log: "single process", or "process i of n (<how>)".

  Raises:
    ValueError: for an unknown mode, or explicit settings that are incomplete or out of
      range (naming the flag).
  """
  if mode not in DISTRIBUTED_MODES:
    raise ValueError(f"`distributed` must be one of {list(DISTRIBUTED_MODES)}; got {mode!r}.")
  explicit = bool(coordinator_address) or num_processes > 0 or process_id >= 0
  if explicit:
    if not (coordinator_address and num_processes > 0 and 0 <= process_id < num_processes):
      raise ValueError(
        "an explicit multi-process launch needs all three of --coordinator_address "
        "(host:port of process 0), --num_processes (>= 1) and --process_id (in [0, "
        f"num_processes)); got {coordinator_address!r}, {num_processes}, {process_id}."
      )
    if mode == "off":
      raise ValueError(
        "--distributed=off contradicts --coordinator_address, "
        "--num_processes and --process_id; drop one or the other."
      )
  if mode == "off" or (mode == "auto" and not explicit and detect_cluster(environ) is None):
    return "single process"
  if explicit:
    jax.distributed.initialize(
      coordinator_address=coordinator_address, num_processes=num_processes, process_id=process_id
    )
    how = f"coordinator {coordinator_address}"
  else:
    jax.distributed.initialize()
    how = detect_cluster(environ) or "detected by JAX"
  return (
    f"process {jax.process_index()} of {jax.process_count()} ({how}), "
    f"{jax.local_device_count()} local of {jax.device_count()} devices"
  )


def is_primary() -> bool:
  """Whether this process writes the run's files (process 0)."""
  return jax.process_index() == 0


def sync(name: str) -> None:
  """Waits until every process reaches this point (a no-op with one process)."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=import-outside-toplevel

    multihost_utils.sync_global_devices(name)
