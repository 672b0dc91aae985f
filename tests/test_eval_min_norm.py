"""Minimum-norm attacks in the evaluation (success rate, minimal L2 norms, accuracy at L2
thresholds, a budget flag) and attack keys that follow the attack's name, not its
position in `config.eval.attacks`."""

import json

import jax
import numpy as np
import pytest

from advjax import eval as ev


def _config(**kw):
  c = ev.default_eval_config()
  c.num_examples, c.masking_checks, c.eps_grid = 24, False, (0.0, 0.1)
  c.attack_options.pgd.update(num_steps=3, step_size=0.4)
  c.attack_options.square.num_queries = 40
  c.update(kw)
  return c


def test_min_norm_summary_on_constructed_points():
  # points: correct (unbroken), broken at 0 (wrong clean), broken at 0.4, 1.2 and 3.0
  correct = np.array([True, False, False, False, False])
  l2 = np.array([0.0, 0.0, 0.4, 1.2, 3.0])
  s = ev.min_norm_summary(correct, l2, (0.5, 1.0, 2.0))
  assert s["success_rate"] == pytest.approx(0.8)
  assert s["accuracy"] == pytest.approx(0.2) and s["num_unbroken"] == 1
  assert s["median_l2"] == pytest.approx(0.8)  # of 0, 0.4, 1.2, 3.0
  assert s["mean_l2"] == pytest.approx(4.6 / 4)
  assert s["l2_thresholds"] == [0.5, 1.0, 2.0]
  # correct, or broken only beyond t: t=0.5 -> {0, 1.2, 3.0}; 1.0 -> same; 2.0 -> {0, 3.0}
  assert s["accuracy_at_l2"] == pytest.approx([0.6, 0.6, 0.4])
  none = ev.min_norm_summary(np.ones(3, bool), np.zeros(3), (1.0,))
  assert none["median_l2"] is None and none["mean_l2"] is None
  assert none["accuracy_at_l2"] == [1.0]


def test_min_norm_budget_check_tolerates_two_points_or_one_percent():
  assert ev.check_min_norm_budget("CW-L2 (x)", 2, 100).passed
  assert not ev.check_min_norm_budget("CW-L2 (x)", 3, 100).passed
  assert ev.check_min_norm_budget("CW-L2 (x)", 10, 1000).passed
  flagged = ev.check_min_norm_budget("CW-L2 (x)", 11, 1000, raise_hint="config.eval.cw_steps")
  assert not flagged.passed and flagged.value == 11 and flagged.threshold == 10
  assert "budget too small: raise config.eval.cw_steps" in flagged.detail


def test_cw_is_reported_as_a_minimum_norm_attack(trained_lenet, mnist, tmp_path):
  _, _, logits_fn = trained_lenet
  c = _config(
    attacks=("fgsm", "cw"),
    attack_options={"cw": {"num_steps": 40, "binary_search_steps": 3, "initial_const": 1.0}},
    l2_thresholds=(1.0, 0.5, 3.0),
    masking_checks=True,
    masking_examples=12,
  )
  r = ev.evaluate(logits_fn, mnist["test"], c, progress=False, name="lenet")
  cw = r["attacks"]["cw"]
  assert cw["kind"] == "min_norm" and r["attacks"]["fgsm"]["kind"] == "bounded"
  assert cw["eps"] is None and cw["norm"] == "l2"
  assert cw["label"] == (
    f"CW-L2 (40 steps x 3 binary-search steps, initial c 1, "
    f"lr {c.attack_options.cw.learning_rate:g})"
  )
  assert "unbounded" not in cw["label"]
  assert "cw" not in r["robustness_gap"] and "fgsm" in r["robustness_gap"]
  assert r["calibration"]["attack"] == "fgsm"
  assert cw["success_rate"] == pytest.approx(1.0 - cw["accuracy"])
  assert cw["num_unbroken"] == round(cw["accuracy"] * 24)
  assert cw["l2_thresholds"] == [0.5, 1.0, 3.0]
  acc = cw["accuracy_at_l2"]
  # a larger radius leaves fewer points; none more than clean, none fewer than unbroken
  assert r["clean_accuracy"] + 1e-9 >= acc[0] >= acc[1] >= acc[2] >= cw["accuracy"] - 1e-9
  assert acc[0] > acc[2]
  assert 0 < cw["median_l2"] < 3.0 and cw["mean_l2"] > 0
  checks = {ch["name"]: ch for ch in r["masking_checks"]["checks"]}
  budget = checks["minimum-norm attack breaks every point (CW-L2)"]
  assert budget["value"] == cw["num_unbroken"]
  assert budget["passed"] == (cw["num_unbroken"] <= 2)

  written = ev.write_evaluation(str(tmp_path), r)
  on_disk = json.load(open(tmp_path / "report.json"))
  assert on_disk["schema_version"] == ev.SCHEMA_VERSION == 2
  ev.validate_report(on_disk)
  md = open(tmp_path / "report.md").read()
  assert "(unbounded)" not in md and "### Minimum-norm attacks (no eps)" in md
  assert f"| {cw['label']} | {cw['success_rate']:.4f} | {cw['num_unbroken']} |" in md
  assert "accuracy at L2 0.5 | accuracy at L2 1 | accuracy at L2 3 |" in md
  # a minimum-norm entry without its fields, or with a gap, is not a valid report
  for broken in (dict(cw, kind="unbounded"), {k: v for k, v in cw.items() if k != "success_rate"}):
    with pytest.raises(ValueError, match="cw"):
      ev.validate_report(dict(written, attacks=dict(written["attacks"], cw=broken)))
  with pytest.raises(ValueError, match="robustness_gap"):
    ev.validate_report(dict(written, robustness_gap=dict(written["robustness_gap"], cw=0.5)))


def test_a_cw_budget_too_small_is_flagged_in_the_masking_checks(trained_lenet, mnist, tmp_path):
  _, _, logits_fn = trained_lenet
  c = _config(
    attacks=("cw",),
    attack_options={"cw": {"num_steps": 2, "binary_search_steps": 1, "initial_const": 1e-3}},
    masking_checks=True,
    masking_examples=12,
  )
  r = ev.evaluate(logits_fn, mnist["test"], c, progress=False, name="lenet")
  assert r["attacks"]["cw"]["num_unbroken"] > 2
  assert not r["masking_checks"]["passed"]
  check = [ch for ch in r["masking_checks"]["checks"] if not ch["passed"]]
  assert [ch["name"] for ch in check] == ["minimum-norm attack breaks every point (CW-L2)"]
  assert (
    "budget too small: raise the budget of 'cw(initial_const=0.001, binary_search_steps=1, "
    "num_steps=2, learning_rate=0.1)' in config.eval.attack_options"
  ) in check[0]["detail"]
  ev.write_evaluation(str(tmp_path), r)
  assert "Gradient-masking checks: FLAGGED" in open(tmp_path / "report.md").read()


@pytest.mark.slow
def test_the_default_cw_budget_breaks_every_point(trained_lenet, mnist):
  _, _, logits_fn = trained_lenet
  c = _config(attacks=("cw",), num_examples=48)
  r = ev.evaluate(logits_fn, mnist["test"], c, progress=False)
  cw = r["attacks"]["cw"]
  assert cw["accuracy"] == 0.0  # 100 steps x 5 searches from c 0.001 left about half
  assert cw["num_unbroken"] == 0 and cw["success_rate"] == 1.0
  assert cw["accuracy_at_l2"][-1] < r["clean_accuracy"]


def test_an_attack_result_does_not_depend_on_the_other_attacks(trained_lenet, mnist):
  _, _, logits_fn = trained_lenet
  n = 16
  runs = {}
  for names in (("fgsm", "pgd", "square"), ("square", "pgd")):
    runs[names] = ev.evaluate(
      logits_fn,
      mnist["test"],
      _config(attacks=names, num_examples=n, gallery_size=n),
      progress=False,
    )
  a, b = runs.values()
  for name in ("square", "pgd"):
    # the gallery holds every point here: its adversarial images and predictions
    for x, y in zip(a["_gallery"][name], b["_gallery"][name]):
      np.testing.assert_array_equal(x, y, err_msg=name)
    assert a["attacks"][name]["accuracy"] == b["attacks"][name]["accuracy"]
  # the key is a stable hash of the name and eps, not Python's hash()
  key = jax.random.PRNGKey(0)
  np.testing.assert_array_equal(
    ev.attack_key(key, "square", 0.1), ev.attack_key(key, "square", 0.1)
  )
  assert not np.array_equal(ev.attack_key(key, "square", 0.1), ev.attack_key(key, "pgd", 0.1))
  assert not np.array_equal(ev.attack_key(key, "pgd", 0.1), ev.attack_key(key, "pgd", 0.2))
