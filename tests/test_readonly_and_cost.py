"""Commands that read a run leave it alone (checkpoints opened read-only, a step removed
by a still-running training's rotation handled), and the cost columns: interleaved step
timings that agree between two measurements, and evaluations that do not re-time the
train step unless asked."""

import json
import os
import shutil

import flax
import numpy as np
import pytest

from advjax import train
from advjax.train import _loop
from advjax.train._checkpoint import Checkpointer


@flax.struct.dataclass
class _State:
  step: np.ndarray
  w: np.ndarray


def _state(step):
  return _State(np.int32(step), np.full(3, step, np.float32))


def _template():
  return _State(np.int32(0), np.zeros(3, np.float32))


def test_a_reader_cleans_up_and_creates_nothing(tmp_path):
  d = tmp_path / "checkpoints"
  writer = Checkpointer(str(d), keep=3)
  writer.save(_state(1), {"epoch": 1})
  in_flight = d / "2.orbax-checkpoint-tmp-1765000000"  # a save still being written
  in_flight.mkdir()
  reader = Checkpointer(str(d), read_only=True)
  state, meta = reader.restore(_template())
  assert int(state.step) == 1 and meta == {"epoch": 1}
  np.testing.assert_array_equal(state.w, np.ones(3))
  assert in_flight.is_dir()  # a writer opening the folder removes it
  with pytest.raises(ValueError, match="read-only"):
    reader.save(_state(3), {})
  reader.close()
  assert not os.path.exists(tmp_path / "none")
  nothing = Checkpointer(str(tmp_path / "none"), read_only=True)
  assert nothing.latest_step() is None and not os.path.exists(tmp_path / "none")
  with pytest.raises(FileNotFoundError, match="no checkpoint"):
    nothing.restore(_template())


def test_a_step_removed_while_read_is_replaced_by_the_newest(tmp_path):
  d = str(tmp_path / "checkpoints")
  writer = Checkpointer(d, keep=2)
  for s in (1, 2):
    writer.save(_state(s), {"s": s})
  reader = Checkpointer(d, read_only=True)
  assert reader.latest_step() == 2
  for s in (3, 4):  # the training goes on: its rotation removes 1 and 2
    writer.save(_state(s), {"s": s})
  assert sorted(os.listdir(d)) == ["3", "4"]
  state, meta = reader.restore(_template())  # 2 is gone: the newest finished step
  assert int(state.step) == 4 and meta == {"s": 4}
  with pytest.raises(ValueError, match="checkpoint 2 .* is not there"):
    reader.restore(_template(), step=2)
  shutil.rmtree(d)  # everything removed: said so, not a model mismatch
  with pytest.raises(ValueError, match="removed while it was read"):
    reader.restore(_template())


@pytest.mark.slow
def test_two_cost_measurements_of_one_state_agree(quick_runs):
  run, state = train.load_run(quick_runs["hyb"])
  a, b = (_loop.measure_cost(run, state) for _ in range(2))
  for c in (a, b):
    assert c["timed_pairs"] >= _loop._MIN_PAIRS  # pylint: disable=protected-access
    lo, hi = c["relative_step_time_range"]
    assert lo <= c["relative_step_time"] <= hi  # the spread is reported
    assert c["clean_step_time_iqr_s"][0] <= c["clean_step_time_s"] <= c["clean_step_time_iqr_s"][1]
    assert c["relative_step_time"] > 1.2  # PGD-2 steps cost more than a clean one
    assert c["relative_memory"] is None or c["relative_memory"] > 1.0
    assert "interleaved" in c["timing"]
  # On a quiet machine they agree within a few percent; a loaded 2-core CI box moves
  # single calls by 2-5x, which the median over neighbouring pairs brings to ~25%.
  ra, rb = a["relative_step_time"], b["relative_step_time"]
  assert abs(ra - rb) / min(ra, rb) < 0.35, (a, b)
  # the training report holds the same measurement
  with open(os.path.join(quick_runs["hyb"], "report.json"), encoding="utf-8") as f:
    trained = json.load(f)["cost"]
  assert set(a) <= set(trained) and trained["relative_step_time"] > 1.2


@pytest.mark.slow
def test_an_evaluation_does_not_time_the_steps_unless_asked(quick_runs, tmp_path, monkeypatch):
  wd = str(tmp_path / "run")
  shutil.copytree(quick_runs["std"], wd)
  with open(os.path.join(wd, "report.json"), encoding="utf-8") as f:
    trained_cost = json.load(f)["cost"]
  step = max(int(s) for s in os.listdir(os.path.join(wd, "checkpoints")) if s.isdigit())
  in_flight = os.path.join(wd, "checkpoints", f"{step + 1}.orbax-checkpoint-tmp-1")
  os.makedirs(in_flight)  # a training still saving its next checkpoint
  calls = []

  def timed(run, state, **kw):
    del run, state, kw
    calls.append(1)
    return {"relative_step_time": 1.0, "timing": "timed here"}

  monkeypatch.setattr(_loop, "measure_cost", timed)
  c = train.read_run_config(wd)
  c.eval.attacks, c.eval.eps_grid, c.eval.num_examples = ("fgsm",), (0.1,), 16
  c.eval.masking_checks = False
  report = train.evaluate_checkpoint(c, wd, name="plain")
  assert not calls
  assert report["cost"] == dict(trained_cost, measured=report["cost"]["measured"])
  assert report["cost"]["measured"].startswith("not measured in this evaluation")
  with open(os.path.join(wd, "eval", "plain", "report.md"), encoding="utf-8") as f:
    assert "not measured in this evaluation" in f.read()
  assert os.path.isdir(in_flight)  # read-only: the checkpoints are untouched
  timed_report = train.evaluate_checkpoint(c, wd, name="timed", time_steps=True)
  assert calls == [1] and timed_report["cost"]["timing"] == "timed here"


def test_without_a_training_report_the_cost_says_it_was_not_measured(tmp_path):
  cost = _loop._training_cost(str(tmp_path))  # pylint: disable=protected-access
  assert set(cost) == {"measured"}
  assert cost["measured"].startswith("not measured in this evaluation")
  (tmp_path / "report.json").write_text(json.dumps({"cost": {"relative_step_time": 3.0}}))
  cost = _loop._training_cost(str(tmp_path))  # pylint: disable=protected-access
  assert cost["relative_step_time"] == 3.0 and "training run's own" in cost["measured"]


def test_load_run_opens_the_checkpoints_read_only(quick_runs, tmp_path):
  wd = str(tmp_path / "run")
  shutil.copytree(quick_runs["std"], wd)
  in_flight = os.path.join(wd, "checkpoints", "999.orbax-checkpoint-tmp-1")
  os.makedirs(in_flight)
  before = sorted(os.listdir(os.path.join(wd, "checkpoints")))
  run, state = train.load_run(wd)
  assert int(state.step) == run.steps_per_epoch
  assert sorted(os.listdir(os.path.join(wd, "checkpoints"))) == before
