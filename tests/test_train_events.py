"""What a long run shows while it runs: TensorBoard event files beside metrics.jsonl (the
same numbers), and the progress bar's images/s and data-wait fraction."""
import glob
import json
import os
import struct
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
      (length,) = struct.unpack("<Q", data[i:i + 8])
      event = event_pb2.Event.FromString(data[i + 12:i + 12 + length])
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
    assert scalars["val/val_acc_clean"][r["step"]] == pytest.approx(r["val_acc_clean"])
    assert scalars["val/alpha"][r["step"]] == pytest.approx(r["alpha"])


def test_event_writer_skips_non_numbers_and_writes_nothing_when_disabled(tmp_path):
  with _events.EventWriter(str(tmp_path / "tb"), start_step=0) as w:
    w.scalars(1, {"a": 1.5, "b": None, "c": "text", "d": np.float32(2.0)}, prefix="x/")
  assert _read_scalars(str(tmp_path / "tb")) == {"x/a": {1: 1.5}, "x/d": {1: 2.0}}
  with _events.EventWriter(str(tmp_path / "off"), enabled=False) as w:
    w.scalars(1, {"a": 1.0})
  assert not os.path.exists(tmp_path / "off")


def test_throughput_counts_images_and_the_time_spent_waiting_for_data():
  def slow_batches():
    for _ in range(3):
      time.sleep(0.05)
      yield "batch"
  rates, batches = _events.Throughput(), slow_batches()
  for _ in range(3):
    rates.wait(batches)
    time.sleep(0.05)          # the "step"
    rates.step(32)
  with pytest.raises(StopIteration):
    rates.wait(batches)
  r = rates.rates()
  assert 0.35 < r["data_wait"] < 0.65                # half the time fetching
  assert 32 * 3 / 0.5 < r["images_per_s"] < 32 * 3 / 0.25
  assert rates.rates()["images_per_s"] == 0.0       # a new window: nothing counted yet
