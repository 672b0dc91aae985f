"""Multi-host training over jax.distributed, tested with several local processes: two
processes x four CPU devices train the hybrid recipe, are killed after a checkpoint,
resume and evaluate, and end with the parameters and metrics of one process x eight
devices; only process 0 writes. Also the launcher's detection and flag checks."""

import glob
import json
import os
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from advjax import train
from tests._inputs import host_devices_env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_detect_cluster_and_explicit_settings_are_checked():
  assert train.detect_cluster({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "16"}) == "slurm"
  assert train.detect_cluster({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "1"}) is None
  assert train.detect_cluster({"OMPI_COMM_WORLD_SIZE": "4"}) == "openmpi"
  assert train.detect_cluster({"TPU_WORKER_HOSTNAMES": "t0,t1,t2,t3"}) == "tpu"
  assert train.detect_cluster({"TPU_WORKER_HOSTNAMES": "t0"}) is None
  assert train.initialize_distributed("auto", environ={}) == "single process"
  assert (
    train.initialize_distributed("off", environ={"OMPI_COMM_WORLD_SIZE": "4"}) == "single process"
  )
  with pytest.raises(ValueError, match=r"needs all three of --coordinator_address"):
    train.initialize_distributed(coordinator_address="localhost:1234", environ={})
  with pytest.raises(ValueError, match=r"needs all three.*'h:1', 2, 2"):
    train.initialize_distributed(coordinator_address="h:1", num_processes=2, process_id=2)
  with pytest.raises(ValueError, match="--distributed=off contradicts"):
    train.initialize_distributed("off", coordinator_address="h:1", num_processes=2, process_id=0)
  with pytest.raises(ValueError, match=r"`distributed` must be one of \['auto', 'on', 'off'\]"):
    train.initialize_distributed("yes")


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _launch(workdir, npz, *extra_flags, processes, devices):
  """Starts `processes` copies of experiments.main, each with `devices` CPU devices."""
  env = host_devices_env(devices)
  cmd = [
    sys.executable,
    "-m",
    "experiments.main",
    "--config=experiments/configs/mnist_hybrid.py:quick",
    f"--workdir={workdir}",
    f"--config.dataset=npz:{npz}",
    "--config.validation_size=100",
    "--config.batch_size=56",
    "--config.num_epochs=2",
    "--config.eps_warmup_epochs=1",
    "--config.train_attack.name=pgd(num_steps=2)",
    "--config.eval.num_examples=100",
    "--config.eval.attacks=('fgsm','pgd')",
    "--config.eval.attack_options.pgd.num_steps=3",
    "--config.eval.attack_options.pgd.step_size=0.4",
    "--config.eval.masking_checks=False",
    "--config.progress=False",
    "--config.stall_check.epochs=0",
    *extra_flags,
  ]
  port = _free_port()
  procs = []
  for pid in range(processes):
    extra = (
      [
        f"--coordinator_address=localhost:{port}",
        f"--num_processes={processes}",
        f"--process_id={pid}",
      ]
      if processes > 1
      else []
    )
    procs.append(
      subprocess.Popen(
        cmd + extra, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
      )
    )
  return procs


def _finish(procs, timeout=900):
  outs = [p.communicate(timeout=timeout)[0] for p in procs]
  for p, out in zip(procs, outs):
    assert p.returncode == 0, out[-3000:]
  return outs


def _records(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(line) for line in f]


def _finished_checkpoints(workdir):
  """Step directories orbax has finalized (renamed from `<step>.orbax-checkpoint-tmp*`)."""
  root = os.path.join(workdir, "checkpoints")
  names = os.listdir(root) if os.path.isdir(root) else []
  return [os.path.join(root, n) for n in names if n.isdigit()]


def _kill_after_first_checkpoint(procs, workdir):
  deadline = time.time() + 900
  while time.time() < deadline and not _finished_checkpoints(workdir):
    assert all(p.poll() is None for p in procs), procs[0].stdout.read()[-3000:]
    time.sleep(0.2)
  for p in procs:  # kill -9 every process
    p.send_signal(signal.SIGKILL)
  for p in procs:
    p.communicate()
  assert not os.path.exists(os.path.join(workdir, "report.json"))


def _params(workdir):
  return [np.asarray(x) for x in jax.tree_util.tree_leaves(train.load_run(workdir)[1])]


@pytest.mark.slow
def test_two_processes_killed_and_resumed_match_one_process_of_eight_devices(tmp_path, mnist):
  npz = str(tmp_path / "digits.npz")
  ds = mnist["train"]
  np.savez(npz, images=ds.images[:1000], labels=ds.labels[:1000])
  ref, multi = str(tmp_path / "one_x8"), str(tmp_path / "two_x4")
  # 1000 digits: 200 test, 100 validation, 700 training = 12 steps of 56 per epoch
  _finish(_launch(ref, npz, processes=1, devices=8))

  _kill_after_first_checkpoint(_launch(multi, npz, processes=2, devices=4), multi)
  outs = _finish(_launch(multi, npz, processes=2, devices=4))
  assert "process 0 of 2" in outs[0] and "process 1 of 2" in outs[1]
  assert "8 devices" in outs[0]

  assert int(train.load_run(multi)[1].step) == 24
  for x, y in zip(_params(ref), _params(multi)):
    np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5)
  ra, rb = _records(ref), _records(multi)
  # process 0 alone wrote the records: each step once, as in the one-process run
  assert [(r["kind"], r["step"]) for r in ra] == [(r["kind"], r["step"]) for r in rb]
  for x, y in zip(ra, rb):
    for k, v in x.items():
      if isinstance(v, float) and k not in ("examples_per_s", "epoch_time_s"):
        np.testing.assert_allclose(y[k], v, rtol=1e-5, atol=1e-5, err_msg=k)
  ja, jb = (json.load(open(os.path.join(d, "report.json"))) for d in (ref, multi))
  assert ja["setup"]["devices"] == jb["setup"]["devices"] == 8
  assert jb["clean_accuracy"] == ja["clean_accuracy"]
  assert {k: v["accuracy"] for k, v in jb["attacks"].items()} == {
    k: v["accuracy"] for k, v in ja["attacks"].items()
  }
  # one TensorBoard event file per launch of process 0 (two launches), none from process 1
  assert len(glob.glob(os.path.join(multi, "tensorboard", "events.*"))) == 2


@pytest.mark.slow
def test_two_processes_on_grain_resume_and_match_one_process(tmp_path, mnist):
  npz = str(tmp_path / "digits.npz")
  ds = mnist["train"]
  np.savez(npz, images=ds.images[:1000], labels=ds.labels[:1000])
  grain = ("--config.input.pipeline=grain", "--config.train_augment=flip")
  ref, killed = str(tmp_path / "one_x8"), str(tmp_path / "two_x4_killed")
  # the global batches, and their augmentation, do not depend on the process count
  _finish(_launch(ref, npz, *grain, processes=1, devices=8))
  _kill_after_first_checkpoint(_launch(killed, npz, *grain, processes=2, devices=4), killed)
  # each process saved its own iterator position
  step_dir = _finished_checkpoints(killed)[0]
  assert sorted(os.listdir(os.path.join(step_dir, "data"))) == [
    "commit_success.txt",
    "process_0-of-2.json",
    "process_1-of-2.json",
  ]
  _finish(_launch(killed, npz, *grain, processes=2, devices=4))
  for x, y in zip(_params(ref), _params(killed)):
    np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5)
  with open(os.path.join(killed, "report.json")) as f:
    assert json.load(f)["setup"]["input"] == "grain, 0 workers"
