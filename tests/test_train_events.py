"""What a long run shows while it runs: TensorBoard event files beside metrics.jsonl (the
same numbers) and the final evaluation's numbers at the last step, and the progress bar's
images/s and data-wait fraction."""

import glob
import json
import os
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

from advjax.train import _events


def _read_scalars(logdir):
  """{tag: {step: value}} from the TFRecord-framed Event protos in `logdir` (read here by
  hand, so the test does not depend on the writer's own reader)."""
  from tensorboardX.proto import event_pb2  # pylint: disable=import-outside-toplevel

  out = {}
  for path in sorted(glob.glob(os.path.join(logdir, "events.out.tfevents.*"))):
    with open(path, "rb") as f:
      data = f.read()
    i = 0
    while i < len(data):
      (length,) = struct.unpack("<Q", data[i : i + 8])
      event = event_pb2.Event.FromString(data[i + 12 : i + 12 + length])
      i += 12 + length + 4
      for v in event.summary.value:
        out.setdefault(v.tag, {})[event.step] = v.simple_value
  return out


def test_quick_run_writes_the_metrics_to_tensorboard(quick_runs):
  workdir = quick_runs["hyb"]
  with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
    records = [json.loads(line) for line in f]
  scalars = _read_scalars(os.path.join(workdir, "tensorboard"))
  train = [r for r in records if r["kind"] == "train"]
  val = [r for r in records if r["kind"] == "val"]
  assert train and val
  assert sorted(scalars["train/loss"]) == [r["step"] for r in train]
  for r in train:
    assert scalars["train/loss"][r["step"]] == pytest.approx(r["loss"], rel=1e-6)
    assert scalars["train/acc_adv"][r["step"]] == pytest.approx(r["acc_adv"], rel=1e-6)
  for r in val:
    assert scalars["val/acc_clean"][r["step"]] == pytest.approx(r["val_acc_clean"])
    assert scalars["val/acc_adv"][r["step"]] == pytest.approx(r["val_acc_adv"])
    assert scalars["val/alpha"][r["step"]] == pytest.approx(r["alpha"])
  assert not [t for t in scalars if t.startswith("val/val_")]  # the prefix once


def test_the_final_evaluation_reaches_tensorboard_at_the_last_step(quick_runs):
  workdir = quick_runs["hyb"]
  with open(os.path.join(workdir, "report.json"), encoding="utf-8") as f:
    report = json.load(f)
  last = report["train"]["steps"]
  scalars = _read_scalars(os.path.join(workdir, "tensorboard"))
  # the training's own writer: one event file for the run's one launch
  assert len(glob.glob(os.path.join(workdir, "tensorboard", "events.out.tfevents.*"))) == 1
  test = {t: v for t, v in scalars.items() if t.startswith("test/")}
  assert all(list(v) == [last] for v in test.values()), test
  assert test["test/clean_accuracy"][last] == pytest.approx(report["clean_accuracy"])
  attacks = report["attacks"]
  assert attacks
  for name, a in attacks.items():
    tag = f"test/{name}" + (f"_eps{a['eps']:g}" if a["eps"] is not None else "")
    assert test[tag][last] == pytest.approx(a["accuracy"]), tag
  curve = report["accuracy_vs_eps"]
  assert len(curve["eps"]) >= 2
  for name in ("fgsm", "pgd"):
    for e, acc in zip(curve["eps"], curve[name]):
      assert test[f"test/{name}_eps{e:g}"][last] == pytest.approx(acc)


def test_report_scalars_name_every_attack_eps_and_the_corruption_mean():
  from advjax.train import _loop  # pylint: disable=import-outside-toplevel

  report = {
    "clean_accuracy": 0.98,
    "attacks": {
      "pgd": {"eps": 0.1, "accuracy": 0.9},
      "cw": {"eps": None, "accuracy": 0.2},
      "broken": {"eps": 0.1, "accuracy": None},
    },
    "accuracy_vs_eps": {
      "eps": [0.05, 0.1, 0.2],
      "fgsm": [0.95, 0.93, 0.5],
      "pgd": [0.94, 0.9, 0.3],
    },
    "corruptions": {"mean": 0.8, "accuracy": {}},
  }
  assert _loop.report_scalars(report) == {
    "clean_accuracy": 0.98,
    "pgd_eps0.1": 0.9,
    "cw": 0.2,
    "fgsm_eps0.05": 0.95,
    "fgsm_eps0.1": 0.93,
    "fgsm_eps0.2": 0.5,
    "pgd_eps0.05": 0.94,
    "pgd_eps0.2": 0.3,
    "corruption_mean": 0.8,
  }


def test_event_writer_skips_non_numbers_and_writes_nothing_when_disabled(tmp_path):
  with _events.EventWriter(str(tmp_path / "tb"), start_step=0) as w:
    w.scalars(1, {"a": 1.5, "b": None, "c": "text", "d": np.float32(2.0)}, prefix="x/")
  assert _read_scalars(str(tmp_path / "tb")) == {"x/a": {1: 1.5}, "x/d": {1: 2.0}}
  with _events.EventWriter(str(tmp_path / "off"), enabled=False) as w:
    w.scalars(1, {"a": 1.0})
  assert not os.path.exists(tmp_path / "off")


_WITHOUT_TORCH = """
import sys
from advjax.train import _events
with _events.EventWriter(sys.argv[1], start_step=0) as w:
  w.scalars(3, {"a": 0.25})
print("torch loaded:", "torch" in sys.modules)
import torch  # installed (the test extra): hidden from tensorboardX's import only
print("torch works:", float(torch.ones(2).sum()))
"""


def test_a_training_process_writes_events_without_importing_torch(tmp_path):
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  proc = subprocess.run(
    [sys.executable, "-c", _WITHOUT_TORCH, str(tmp_path / "tb")],
    cwd=root,
    env=dict(os.environ, PYTHONPATH=root, JAX_PLATFORMS="cpu"),
    capture_output=True,
    text=True,
    timeout=300,
    check=False,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "torch loaded: False" in proc.stdout and "torch works: 2.0" in proc.stdout
  assert _read_scalars(str(tmp_path / "tb")) == {"a": {3: 0.25}}


def test_throughput_counts_images_and_the_time_spent_waiting_for_data():
  def slow_batches():
    for _ in range(4):
      time.sleep(0.05)
      yield "batch"

  rates, batches = _events.Throughput(), slow_batches()
  rates.wait(batches)
  time.sleep(0.3)  # the first step compiles: neither counted nor timed
  rates.step(32)
  for _ in range(3):
    rates.wait(batches)
    time.sleep(0.05)  # the "step"
    rates.step(32)
  with pytest.raises(StopIteration):
    rates.wait(batches)
  r = rates.rates()
  assert 0.35 < r["data_wait"] < 0.65  # half the time fetching
  assert 32 * 3 / 0.5 < r["images_per_s"] < 32 * 3 / 0.25
  assert rates.rates() == r  # an empty window keeps the rate (no drop to 0)


def test_throughput_is_a_moving_average_that_skips_the_compiling_step(monkeypatch):
  clock = [0.0]
  monkeypatch.setattr(_events.time, "perf_counter", lambda: clock[0])
  rates = _events.Throughput(smoothing=0.5)
  assert rates.rates()["images_per_s"] == 0.0  # nothing counted yet
  clock[0] += 30.0  # compiling the first step
  rates.step(100)
  for _ in range(10):
    clock[0] += 1.0
    rates.step(100)  # 100 images/s
  assert rates.rates()["images_per_s"] == pytest.approx(100.0)
  rates.step(1000)  # a window of 1000 images/s (async dispatch, say) ...
  clock[0] += 1.0
  assert rates.rates()["images_per_s"] == pytest.approx(550.0)  # ... is averaged in
  clock[0] += 60.0  # validation and a checkpoint
  rates.restart()
  clock[0] += 1.0
  rates.step(550)
  assert rates.rates()["images_per_s"] == pytest.approx(550.0)  # not diluted by them
  monkeypatch.undo()
  with pytest.raises(ValueError, match="smoothing"):
    _events.Throughput(smoothing=0.0)
