"""The stall detector: a training loss at chance (log K) for a whole epoch stops the run."""

import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from advjax import train
from advjax.train import _stall

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOG10 = math.log(10)

# Training losses (PGD-7 at eps 0.15 from the first step, Adam 2e-3, LeNet-5 on mnist5k,
# experiment (b)'s PGD-AT row before its eps warm-up) of the first epoch, 27 steps:
# seed 0 went on to train, seed 1 stalled at chance (its second epoch: 2.302-2.311).
SEED0_EPOCH1 = [
  3.726,
  3.049,
  2.823,
  2.664,
  2.581,
  2.520,
  2.474,
  2.460,
  2.417,
  2.408,
  2.407,
  2.391,
  2.350,
  2.342,
  2.345,
  2.338,
  2.347,
  2.318,
  2.322,
  2.296,
  2.271,
  2.294,
  2.242,
  2.254,
  2.167,
  2.193,
  2.139,
]
SEED0_EPOCH2_ON = np.linspace(2.114, 1.2, 54)  # mean 1.81 in epoch 2, 1.37 in epoch 3
SEED1_EPOCH1 = [
  3.120,
  2.810,
  2.636,
  2.547,
  2.507,
  2.451,
  2.422,
  2.394,
  2.377,
  2.369,
  2.356,
  2.346,
  2.345,
  2.339,
  2.335,
  2.332,
  2.333,
  2.330,
  2.329,
  2.324,
  2.323,
  2.320,
  2.320,
  2.316,
  2.314,
  2.313,
  2.312,
]
SEED1_EPOCH2 = 2.3026 + 0.004 * np.sin(np.arange(27))  # at log 10 +- 0.004


def _feed(check, losses, steps_per_epoch=27):
  """The loop's use of the detector: one epoch at a time; the first stalled step or None."""
  run = 0
  for start in range(0, len(losses), steps_per_epoch):
    run = check.run_length(losses[start : start + steps_per_epoch], run)
    if check.stalled(run):
      return min(start + steps_per_epoch, len(losses))
  return None


def test_fires_on_a_stalled_loss_stream_and_not_on_a_healthy_one():
  check = _stall.StallCheck(num_classes=10, window=27, tolerance=0.01)
  assert check.chance_loss == pytest.approx(LOG10)
  stalled = np.concatenate([SEED1_EPOCH1, SEED1_EPOCH2, SEED1_EPOCH2])
  # seed 1 is at chance from step 20 (2.324 <= 1.01 * log 10 = 2.3256)
  assert check.run_length(SEED1_EPOCH1) == 8
  assert _feed(check, stalled) == 54  # 8 + 27 steps at the end of epoch 2
  healthy = np.concatenate([SEED0_EPOCH1, SEED0_EPOCH2_ON])
  assert _feed(check, healthy) is None
  assert check.run_length(SEED0_EPOCH1) == 0
  # a stream that crosses log K while it leaves the initialization is not at chance
  assert _feed(check, np.linspace(2.5, 2.0, 27)) is None
  # the run length carries across epochs and restarts after any step away from chance
  assert check.run_length([LOG10] * 5, previous=30) == 35
  assert check.run_length([], previous=30) == 30 and check.run_length(np.zeros((0, 2))) == 0
  assert check.run_length([LOG10, 2.0, LOG10, LOG10], previous=30) == 2


def test_tolerance_is_relative_to_log_k_and_every_term_must_be_at_chance():
  check = _stall.StallCheck(num_classes=100, window=3, tolerance=0.01)
  lk = math.log(100)
  np.testing.assert_array_equal(
    check.at_chance([lk * 1.0099, lk * 0.9901, lk * 1.0101, lk * 0.9899]),
    [True, True, False, False],
  )
  # [steps, terms]: clean and adversarial cross-entropy must both be at chance
  np.testing.assert_array_equal(
    check.at_chance([[lk, lk], [lk, 0.5], [3.0, lk]]), [True, False, False]
  )
  metrics = [{"loss": 9.0, "loss_clean": 1.0, "loss_adv": 2.0, "acc_adv": 0.5}]
  np.testing.assert_array_equal(_stall.chance_losses(metrics), [[1.0, 2.0]])
  np.testing.assert_array_equal(_stall.chance_losses([{"loss": 7.0}]), [[7.0]])


def test_window_is_epochs_of_steps_with_a_minimum_and_the_config_is_checked():
  c = train.default_config()
  assert (c.stall_check.epochs, c.stall_check.tolerance) == (1.0, 0.01)  # on by default
  assert _stall.make_stall_check(c, 10, 27).window == 50  # min_steps 50
  assert _stall.make_stall_check(c, 10, 200).window == 200
  c.stall_check.epochs, c.stall_check.min_steps = 2.5, 0
  assert _stall.make_stall_check(c, 10, 6) == _stall.StallCheck(10, 15, 0.01)
  c.stall_check.epochs = 0.0
  assert _stall.make_stall_check(c, 10, 27) is None
  for key, value in [("epochs", -1.0), ("tolerance", 0.0), ("tolerance", 1.5), ("min_steps", -2)]:
    bad = train.default_config()
    bad.stall_check[key] = value
    with pytest.raises(ValueError, match=f"stall_check.{key}"):
      train.validate_config(bad)


def test_message_says_how_long_and_what_to_change():
  c = train.validate_config(train.default_config())
  c.recipe, c.alpha, c.num_epochs, c.learning_rate = "adversarial", 0.0, 10, 2e-3
  check = _stall.StallCheck(10, 50, 0.01)
  text = _stall.stall_message(check, 61, step=81, steps_per_epoch=27, checkpoint_step=54, config=c)
  for part in [
    "stalled at chance",
    "within 1% of log(10) = 2.3026",
    "61 steps",
    "2.3 epochs",
    "steps 21-81",
    "checkpoint (step 54)",
    "--config.eps_schedule=linear",
    "--config.eps_warmup_epochs=3",
    "--config.learning_rate=0.001",
    "--config.stall_check.epochs=0",
  ]:
    assert part in text, (part, text)
  c.eps_schedule, c.eps_warmup_epochs = "linear", 3
  assert "eps_schedule" not in _stall.stall_message(
    check, 61, step=81, steps_per_epoch=27, checkpoint_step=None, config=c
  )


@pytest.mark.slow  # about 23 s of CPU: a process that imports jax and compiles a LeNet step
def test_a_stalled_run_stops_through_main_and_keeps_the_last_good_checkpoint(tmp_path):
  """A dead network (SGD with a weight decay that zeroes the kernels: logits 0, loss
  log 10 from step 3), 6 steps an epoch: the window (1 epoch) fills in epoch 2."""
  wd = tmp_path / "run"
  cmd = [
    sys.executable,
    "-m",
    "experiments.main",
    "--config=experiments/configs/mnist_standard.py:quick",
    f"--workdir={wd}",
    "--config.num_epochs=4",
    "--config.batch_size=512",
    "--config.optimizer=sgd",
    "--config.momentum=0.0",
    "--config.learning_rate=0.1",
    "--config.weight_decay=2.5",
    "--config.lr_schedule=constant",
    "--config.progress=False",
    "--config.stall_check.epochs=1",
    "--config.stall_check.min_steps=0",
  ]
  proc = subprocess.run(
    cmd,
    cwd=ROOT,
    env=dict(os.environ, PYTHONPATH=ROOT),
    capture_output=True,
    text=True,
    timeout=600,
    check=False,
  )
  assert proc.returncode == 1, proc.stderr[-3000:]
  error = first_error = proc.stderr.strip().splitlines()[-1]
  assert error.startswith("error: training stalled at chance"), error
  assert "stopped at step 12" in error and "checkpoint (step 6)" in error, error
  assert "less weight decay (now 2.5)" in error, error
  assert "Traceback" not in proc.stderr
  # the workdir is the run at its last good checkpoint: nothing of the stalled epoch
  assert sorted(os.listdir(wd / "checkpoints")) == ["6"]
  records = [json.loads(line) for line in open(wd / "metrics.jsonl", encoding="utf-8")]
  assert max(r["step"] for r in records) == 6
  assert [r["kind"] for r in records].count("train") == 6
  assert not (wd / "report.json").exists()
  run, state = train.load_run(str(wd))
  assert int(state.step) == 6 and run.config.stall_check.epochs == 1
  # resumed with a longer window (a key a continuation may change), the count includes
  # the steps at chance logged before the resume (3-6) and those run now (7-18)
  proc = subprocess.run(
    cmd + ["--config.stall_check.epochs=2"],
    cwd=ROOT,
    env=dict(os.environ, PYTHONPATH=ROOT),
    capture_output=True,
    text=True,
    timeout=600,
    check=False,
  )
  assert proc.returncode == 1, proc.stderr[-3000:]
  error = proc.stderr.strip().splitlines()[-1]
  first = int(re.search(r"for (\d+) steps", first_error).group(1))  # 10: steps 3-12
  assert f"for {first + 6} steps" in error and f"steps {13 - first}-18" in error, error
  assert "checkpoint (step 12)" in error, error
  assert sorted(os.listdir(wd / "checkpoints"), key=int) == ["6", "12"]
