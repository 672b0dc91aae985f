"""Evaluation suite: metrics against hand-computed cases, masking checks on a real and
a masked model, report schema, compare CLI, and bad input."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from advjax import eval as ev
from advjax import train

from tests._inputs import QUICK, ROOT, quick_config


def test_ece_on_constructed_probabilities():
  # bin 15 (0.95): accuracy 0.5 -> |0.5 - 0.95| * 2/4; bin 9 (0.55): accuracy 1 -> 0.45 * 2/4
  conf = np.array([0.95, 0.95, 0.55, 0.55])
  correct = np.array([1, 0, 1, 1])
  assert ev.expected_calibration_error(conf, correct) == pytest.approx(0.45)
  assert ev.expected_calibration_error(
    np.array([0.8] * 10), np.array([1] * 8 + [0] * 2)
  ) == pytest.approx(0.0)
  with pytest.raises(ValueError, match="confidence"):
    ev.expected_calibration_error(conf, correct[:3])


def test_flip_probability_on_a_constructed_sequence():
  preds = np.array([[0, 0], [0, 1], [1, 1]])  # frame pairs: (F, T), (T, F)
  assert ev.flip_probability(preds) == pytest.approx(0.5)
  assert ev.flip_probability(np.zeros((5, 3))) == 0.0
  with pytest.raises(ValueError):
    ev.flip_probability(np.zeros(4))


@pytest.mark.parametrize("kind", ev.PERTURBATIONS)
def test_perturbation_sequences_start_at_the_image_and_stay_in_range(kind, mnist):
  image = jnp.asarray(mnist["test"].images[0])
  frames = ev.perturbation_sequence(jax.random.PRNGKey(0), image, kind=kind, num_frames=6)
  assert frames.shape == (6,) + image.shape and frames.dtype == image.dtype
  np.testing.assert_allclose(frames[0], image, atol=1e-5)
  assert float(frames.min()) >= 0.0 and float(frames.max()) <= 1.0
  dist = [float(jnp.abs(f - image).sum()) for f in frames]
  assert dist[-1] > dist[1] > 0  # the perturbation grows


def test_mce_arithmetic():
  errors = {"a": {1: 0.2, 2: 0.4}, "b": {1: 0.1, 2: 0.1}}
  base = {"a": {1: 0.4, 2: 0.4}, "b": {1: 0.2, 2: 0.2}}
  out = ev.mean_corruption_error(errors, base)
  assert out["ce"] == pytest.approx({"a": 0.75, "b": 0.5})
  assert out["mce"] == pytest.approx(0.625)
  # relative mCE with clean errors 0.05 and 0.1: a: 0.5/0.6, b: 0.1/0.2
  assert ev.relative_mce(errors, base, 0.05, 0.1) == pytest.approx((0.5 / 0.6 + 0.5) / 2)


def test_each_check_can_flag():
  assert not ev.check_monotone_in_eps([0, 0.1, 0.2], [0.9, 0.5, 0.7]).passed
  assert ev.check_monotone_in_eps([0, 0.1, 0.2], [0.9, 0.5, 0.5]).passed
  assert not ev.check_unbounded(0.3).passed and ev.check_unbounded(0.0).passed
  assert not ev.check_iterative_stronger(0.4, 0.6).passed
  assert ev.check_iterative_stronger(0.6, 0.4).passed
  assert not ev.check_black_box_weaker(0.2, 0.5).passed
  assert ev.check_black_box_weaker(0.5, 0.45).passed
  assert not ev.check_zero_gradients(0.5).passed and ev.check_zero_gradients(0.0).passed
  assert not ev.check_deterministic(0.3).passed and ev.check_deterministic(0.0).passed
  assert not ev.check_min_norm_budget("CW-L2", 3, 10).passed
  assert ev.check_min_norm_budget("CW-L2", 2, 10).passed


def _small_config(**kw):
  c = ev.default_eval_config()
  c.num_examples, c.masking_examples = 200, 100
  c.attack_options.square.num_queries = 300
  c.eps_grid = (0.0, 0.05, 0.1, 0.2)
  c.attack_options.pgd.update(num_steps=10, step_size=0.25)
  c.update(kw)
  return c


def _by_name(report):
  return {c["name"]: c for c in report["masking_checks"]["checks"]}


@pytest.mark.slow
def test_masking_checks_pass_on_a_trained_lenet_and_report_is_valid(trained_lenet, mnist, tmp_path):
  _, _, logits_fn = trained_lenet
  r = ev.evaluate(
    logits_fn,
    mnist["test"],
    _small_config(
      flip_rate=True,
      flip_examples=50,
      corruptions=("gaussian_noise", "contrast"),
      corruption_severities=(1, 5),
      corruption_examples=100,
    ),
    progress=False,
    name="lenet",
  )
  assert r["masking_checks"]["passed"], r["masking_checks"]
  curve = r["accuracy_vs_eps"]
  assert curve["pgd"][0] == pytest.approx(r["clean_accuracy"])
  assert r["attacks"]["pgd"]["accuracy"] <= r["attacks"]["fgsm"]["accuracy"]
  assert r["attacks"]["pgd"]["median_linf"] == pytest.approx(0.1, abs=1e-5)
  assert set(r["flip_rate"]) == set(ev.PERTURBATIONS)
  assert all(0 <= v <= 1 for v in r["flip_rate"].values())
  acc = r["corruptions"]["accuracy"]
  assert acc["gaussian_noise"]["1"] >= acc["gaussian_noise"]["5"]
  written = ev.write_evaluation(str(tmp_path), r)
  ev.validate_report(json.load(open(tmp_path / "report.json")))
  for f in written["figures"]:
    assert (tmp_path / f).stat().st_size > 1000
  assert "Gradient-masking checks: all passed" in open(tmp_path / "report.md").read()
  broken = dict(written)
  del broken["attacks"]
  with pytest.raises(ValueError, match="attacks"):
    ev.validate_report(broken)
  with pytest.raises(ValueError, match="schema_version"):
    ev.validate_report(dict(written, schema_version=0))


@pytest.mark.slow
def test_masking_checks_flag_a_model_with_vanishing_gradients(trained_lenet, mnist):
  _, _, logits_fn = trained_lenet
  # thresholds its input behind a stop-gradient: accurate, but every gradient is zero
  masked = lambda x: logits_fn(jax.lax.stop_gradient(jnp.round(x)))
  r = ev.evaluate(masked, mnist["test"], _small_config(), progress=False)
  checks = _by_name(r)
  assert not r["masking_checks"]["passed"]
  assert not checks["input gradients are non-zero"].get("passed")
  assert checks["input gradients are non-zero"]["value"] == pytest.approx(1.0)
  assert not checks["unbounded eps breaks the model"]["passed"]
  assert not checks["black-box not stronger than white-box"]["passed"]


def test_nondeterministic_model_is_flagged(trained_lenet, mnist):
  _, _, logits_fn = trained_lenet
  calls = []

  def noisy(x):  # a stateful model: another answer on every eager call
    calls.append(1)
    return logits_fn(x) + 0.1 * len(calls)

  c = _small_config(
    attacks=("fgsm",),
    num_examples=50,
    masking_examples=20,
    attack_options={"square": {"num_queries": 20}, "pgd": {"num_steps": 2}},
    eps_grid=(0.0, 0.1),
  )
  r = ev.evaluate(noisy, mnist["test"], c, progress=False)
  assert not _by_name(r)["predictions deterministic"]["passed"]


def test_bad_eval_input(trained_lenet, mnist):
  _, _, logits_fn = trained_lenet
  with pytest.raises(ValueError, match="Unknown attack 'pgd2'"):
    ev.evaluate(logits_fn, mnist["test"], _small_config(attacks=("fgsm", "pgd2")))
  with pytest.raises(ValueError, match=r"`config.eval.attacks` must be a tuple .* not a string"):
    ev.evaluate(logits_fn, mnist["test"], ml_collections.ConfigDict({"attacks": "fgsm,pgd"}))
  with pytest.raises(ValueError, match="config.eval.num_examples must be None"):
    ev.evaluate(logits_fn, mnist["test"], ml_collections.ConfigDict({"num_examples": -1}))
  with pytest.raises(ValueError, match=r"Unknown corruption 'none' .*\(\) is none"):
    ev.evaluate(logits_fn, mnist["test"], ml_collections.ConfigDict({"corruptions": ("none",)}))
  with pytest.raises(ValueError, match="config.eval.l2_thresholds must be >= 0"):
    ev.evaluate(logits_fn, mnist["test"], ml_collections.ConfigDict({"l2_thresholds": (-1.0,)}))
  with pytest.raises(ValueError, match="Unknown eval config key 'foo'"):
    ev.evaluate(logits_fn, mnist["test"], ml_collections.ConfigDict({"foo": 1}))
  with pytest.raises(ValueError, match="Unknown attack"):
    train.validate_config(quick_config(**{"eval.attacks": ("fgsm", "nope")}))


@pytest.fixture(scope="module")
def two_runs(quick_runs):
  """The shared one-epoch runs "std" (standard) and "hyb" (hybrid); see conftest."""
  return [quick_runs["std"], quick_runs["hyb"]]


@pytest.mark.slow
def test_compare_writes_a_table_from_real_runs(two_runs, tmp_path):
  r = subprocess.run(
    [sys.executable, "-m", "experiments.compare", *two_runs, f"--out={tmp_path}"],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert r.returncode == 0, r.stderr[-2000:]
  table = open(tmp_path / "compare.md").read()
  assert "| std |" in table and "| hyb |" in table
  assert "FGSM" in table and "PGD-3" in table
  assert (tmp_path / "accuracy_vs_eps.png").stat().st_size > 1000
  std = json.load(open(os.path.join(two_runs[0], "report.json")))
  assert f"{std['clean_accuracy']:.4f}" in table
  r = subprocess.run(
    [sys.executable, "-m", "experiments.compare", str(tmp_path / "nope")],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert r.returncode != 0 and "no report.json" in r.stderr


@pytest.mark.slow
def test_eval_cli_errors_and_nothing_is_overwritten(two_runs, tmp_path):
  std = two_runs[0]
  before = open(os.path.join(std, "report.json")).read()
  cfg = ["--config=experiments/configs/mnist_hybrid.py:quick", "--config.progress=False"]

  def cli(*args):
    return subprocess.run(
      [sys.executable, "-m", "experiments.main", *cfg, *args],
      cwd=ROOT,
      capture_output=True,
      text=True,
      timeout=300,
    )

  # a workdir of another config (std was trained with recipe "standard")
  r = cli(f"--workdir={std}", "--mode=eval")
  assert r.returncode != 0 and "holds a run of another config" in r.stderr
  # no checkpoint at all
  os.makedirs(tmp_path / "empty")
  r = cli(f"--workdir={tmp_path / 'empty'}", "--mode=eval")
  assert r.returncode != 0 and "is not an advjax run (no config.json)" in r.stderr
  # an unknown attack name
  r = cli(f"--workdir={std}", "--mode=eval", "--config.eval.attacks=('fgsm','magic')")
  assert r.returncode != 0 and "Unknown attack 'magic'" in r.stderr
  assert open(os.path.join(std, "report.json")).read() == before
  # an unreadable checkpoint
  hyb = two_runs[1]
  ck = os.path.join(hyb, "checkpoints")
  step = sorted(d for d in os.listdir(ck) if d.isdigit())[-1]
  bad = tmp_path / "bad"
  subprocess.run(["cp", "-r", hyb, str(bad)], check=True)
  for root, _, files in os.walk(bad / "checkpoints" / step):
    for f in files:
      open(os.path.join(root, f), "wb").close()
  r = cli(f"--workdir={bad}", "--mode=eval", *QUICK, "--config.num_epochs=1", "--config.name=hyb")
  assert r.returncode != 0 and "cannot read checkpoint" in r.stderr


@pytest.mark.slow
def test_the_whole_attack_battery_runs_and_is_ordered(trained_lenet, mnist):
  _, _, logits_fn = trained_lenet
  c = _small_config(
    attacks=tuple(ev.ATTACKS),
    num_examples=64,
    masking_checks=False,
    eps_grid=(0.0, 0.1),
    attack_options={
      "cw": {"num_steps": 30, "binary_search_steps": 3},
      **{n: {"num_steps": 20} for n in ("apgd_ce", "apgd_dlr", "fab")},
      **{n: {"num_steps": 20, "num_target_classes": 2} for n in ("apgd_t", "fab_t")},
      "square": {"num_queries": 200},
      "autoattack": {"num_steps": 20, "num_target_classes": 2, "num_queries": 200},
    },
  )
  r = ev.evaluate(logits_fn, mnist["test"], c, progress=False)
  acc = {n: a["accuracy"] for n, a in r["attacks"].items()}
  assert set(acc) == set(ev.ATTACKS)
  # the worst case over its stages; separate runs use other keys: allow 2 examples of noise
  assert (
    acc["autoattack"]
    <= min(acc["apgd_ce"], acc["apgd_t"], acc["fab_t"], acc["square"]) + 2 / 64 + 1e-9
  )
  assert acc["pgd"] <= acc["fgsm"] + 0.02
  assert r["attacks"]["cw"]["eps"] is None and r["attacks"]["cw"]["median_l2"] > 0
  assert r["attacks"]["cw"]["kind"] == "min_norm" and "cw" not in r["robustness_gap"]
  assert set(r["robustness_gap"]) == set(ev.ATTACKS) - {"cw"}
  for n, a in r["attacks"].items():
    if a["eps"] is not None and a["median_linf"] is not None:
      assert a["median_linf"] <= 0.1 + 1e-5, n
