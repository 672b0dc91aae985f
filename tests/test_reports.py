"""Reports and figures: evaluations beside the training report, absent values, subset
sizes, the adversarial gallery and the attack styles of accuracy-vs-eps."""

import json
import os

import matplotlib
import numpy as np
import pytest

from advjax import eval as ev
from advjax import plots, train
from advjax.eval import _masking
from tests._inputs import quick_config

ATTACK_NAMES = ("fgsm", "pgd", "cw", "apgd_ce", "apgd_t", "fab_t", "square", "autoattack")


def _report(attacks=("fgsm", "pgd"), name="r", **extra):
  """A small valid report, as `evaluate` returns one (without the gallery)."""
  entries = {}
  for i, a in enumerate(attacks):
    entries[a] = {
      "label": a.upper(),
      "eps": None if a == "cw" else 0.1,
      "norm": "l2" if a == "cw" else "linf",
      "accuracy": 0.5 - 0.03 * i,
      "kind": "min_norm" if a == "cw" else "bounded",
      "confidence": 0.8,
      "median_l2": 1.0,
      "median_linf": 0.1,
      "time_s": 1.0,
    }
    if a == "cw":
      entries[a].update(
        success_rate=0.5 + 0.03 * i,
        num_unbroken=round(100 * (0.5 - 0.03 * i)),
        mean_l2=1.1,
        l2_thresholds=[0.5, 1.0],
        accuracy_at_l2=[0.9, 0.6],
      )
  r = {
    "schema_version": ev.SCHEMA_VERSION,
    "name": name,
    "num_test_examples": 100,
    "clean_accuracy": 0.97,
    "clean_confidence": 0.95,
    "attacks": entries,
    "robustness_gap": {
      a: 0.97 - e["accuracy"] for a, e in entries.items() if e["kind"] == "bounded"
    },
    "accuracy_vs_eps": {"eps": [0.0, 0.1, 0.2], "fgsm": [0.97, 0.6, 0.3], "pgd": [0.97, 0.4, 0.05]},
    "calibration": {"num_bins": 15, "ece_clean": 0.01, "hist_clean": [1] * 15},
    "corruptions": None,
    "flip_rate": None,
    "masking_checks": None,
    "eval_time_s": 1.0,
    "figures": [],
  }
  r.update(extra)
  return r


# Evaluations of a checkpoint go beside the training report.


@pytest.mark.parametrize("name", ["", " ", "../x", "a/b", "..", ".", ".hidden", "a..b", "a\\b"])
def test_evaluation_name_must_be_a_plain_folder_name(name, tmp_path):
  with pytest.raises(ValueError, match="name"):
    train.evaluate_checkpoint(quick_config(), str(tmp_path), name=name)
  assert not os.listdir(tmp_path)


def _tree(folder):
  """{relative path: bytes} of every file under `folder`."""
  out = {}
  for root, _, files in os.walk(folder):
    for f in files:
      p = os.path.join(root, f)
      with open(p, "rb") as fh:
        out[os.path.relpath(p, folder)] = fh.read()
  return out


def test_replacing_an_evaluation_folder_is_all_or_nothing(tmp_path, monkeypatch):
  out = str(tmp_path / "eval" / "x")
  first = ev.write_evaluation(out, _report(name="first"), replace=True)
  assert first["name"] == "first"
  before = _tree(out)
  assert {"report.json", "report.md", os.path.join("figures", "accuracy_vs_eps.png")} <= set(before)
  open(os.path.join(out, "stale.txt"), "w").close()

  def crash(*args, **kwargs):
    raise RuntimeError("disk full")

  with monkeypatch.context() as m:  # a crash halfway through the second evaluation
    m.setattr(plots, "confidence_histograms", crash)
    with pytest.raises(RuntimeError, match="disk full"):
      ev.write_evaluation(out, _report(name="second"), replace=True)
  assert _tree(out) == dict(before, **{"stale.txt": b""})
  assert os.listdir(tmp_path / "eval") == ["x"]  # no half-written folder left over
  ev.write_evaluation(out, _report(name="third"), replace=True)
  after = _tree(out)
  assert "stale.txt" not in after and set(after) == set(before)  # replaced whole
  assert json.loads(after["report.json"])["name"] == "third"
  assert os.listdir(tmp_path / "eval") == ["x"]


def _cheap_cost(run, state):  # XLA memory analysis of two steps: slow and beside the point
  del run, state
  return {
    "clean_step_time_s": 0.01,
    "peak_memory_bytes": None,
    "clean_peak_memory_bytes": None,
    "relative_memory": None,
  }


@pytest.mark.slow
def test_evaluations_never_overwrite_the_training_report(tmp_path, monkeypatch):
  monkeypatch.setattr(train._loop, "measure_cost", _cheap_cost)  # pylint: disable=protected-access
  c = quick_config(
    **{
      "recipe": "standard",
      "num_epochs": 1,
      "eval.attacks": ("fgsm", "pgd"),
      "eval.eps_grid": (0.1,),
      "eval.num_examples": 32,
      "eval.masking_checks": False,
    }
  )
  wd = str(tmp_path / "run")
  trained = train.train_and_evaluate(c, wd)
  assert trained["output_dir"] == wd
  training = {k: v for k, v in _tree(wd).items() if not k.startswith("checkpoints")}
  on_disk = json.loads(training["report.json"])
  assert "output_dir" not in on_disk and on_disk == {
    k: v for k, v in trained.items() if k != "output_dir"
  }
  step = trained["train"]["steps"]

  c.eval.attacks = ("fgsm", "pgd", "cw")  # an unbounded attack: eps None in the report
  c.eval.attack_options.cw.update(num_steps=5, binary_search_steps=1)
  default = train.evaluate_checkpoint(c, wd)
  out = os.path.join(wd, "eval", f"step_{step}")
  assert default["output_dir"] == out
  assert default["attacks"]["cw"]["eps"] is None
  files = _tree(out)
  assert {
    "report.json",
    "report.md",
    os.path.join("figures", "gallery.png"),
    os.path.join("figures", "accuracy_vs_eps.png"),
  } <= set(files)
  assert json.loads(files["report.json"])["attacks"]["cw"]["eps"] is None
  assert "output_dir" not in json.loads(files["report.json"])
  ev.validate_report(json.loads(files["report.json"]))
  assert f"| evaluation | step_{step} (checkpoint at step {step}) |" in files["report.md"].decode()
  assert default["clean_accuracy"] == trained["clean_accuracy"]

  c.eval.attacks = ("fgsm",)
  named = train.evaluate_checkpoint(c, wd, name="fgsm_only")
  assert named["output_dir"] == os.path.join(wd, "eval", "fgsm_only")
  assert set(named["attacks"]) == {"fgsm"}
  assert sorted(os.listdir(os.path.join(wd, "eval"))) == ["fgsm_only", f"step_{step}"]
  # the training report, metrics and figures are untouched, byte for byte
  assert {
    k: v for k, v in _tree(wd).items() if not k.startswith(("checkpoints", "eval"))
  } == training
  assert _tree(out) == files  # another name leaves the first evaluation alone


# Item 6: absent values and subset sizes.


def test_markdown_prints_a_dash_for_every_absent_value():
  r = _report(("fgsm", "pgd", "cw"))
  r["attacks"]["pgd"]["median_l2"] = float("nan")
  r["attacks"]["cw"]["mean_l2"] = None
  r["accuracy_vs_eps"]["fgsm"][2] = float("nan")
  r["calibration"].update(attack="pgd", ece_adv=None)
  r["masking_checks"] = {
    "passed": True,
    "checks": [
      {"name": "c", "passed": True, "value": None, "threshold": float("nan"), "detail": "d"}
    ],
  }
  r["setup"] = {"init from": None, "dropout": float("nan"), "members": [0.9, None]}
  r["train"] = {"steps": 10, "pass_kept": None, "final_eps": float("nan")}
  r["cost"] = {"peak_memory_bytes": None, "relative_memory": float("nan")}
  r["corruptions"] = {
    "accuracy": {"fog": {"1": 0.5, "2": None}},
    "num_examples": 10,
    "mean": float("nan"),
    "mce": None,
  }
  md = ev.render_markdown(r)
  assert "None" not in md and "nan" not in md.lower()
  for row in (
    "| pass_kept | - |",
    "| final_eps | - |",
    "| peak_memory_bytes | - |",
    "| relative_memory | - |",
    "| init from | - |",
    "| dropout | - |",
    "| members | 0.9, - |",
    "| steps | 10 |",
    "| CW | 0.5600 | 44 | 1.0000 | - | 0.9000 | 0.6000 |",
    "| PGD | 0.1 (linf) | 0.4700 | 0.5000 | 0.8000 | - | 0.1000 |",
    "| fgsm | 0.970 | 0.600 | - |",
    "| c | pass | - | - | d |",
    "| fog | 0.500 | - | 0.500 |",
  ):
    assert row in md, row
  assert "under pgd -." in md and "Mean corruption accuracy: -." in md


def test_subset_note_only_when_fewer_points():
  c = ev.check_black_box_weaker(0.6, 0.5)
  assert _masking.on_subset(c, 200, 200) == c
  noted = _masking.on_subset(c, 50, 200)
  assert noted.detail == c.detail + " (on the first 50 of 200 test points)"
  assert noted[:4] == c[:4]


@pytest.fixture(scope="module")
def small_eval(trained_lenet, mnist):
  """An evaluation of the trained LeNet on 60 points, masking checks on 20."""
  _, _, logits_fn = trained_lenet
  c = ev.default_eval_config()
  c.attacks, c.num_examples, c.masking_examples = ("fgsm", "pgd"), 60, 20
  c.attack_options.square.num_queries = 20
  c.attack_options.pgd.update(num_steps=5, step_size=0.3)
  c.eps_grid, c.gallery_size = (0.0, 0.1), 8
  return ev.evaluate(logits_fn, mnist["test"], c, progress=False, name="lenet")


@pytest.mark.slow
def test_masking_checks_name_their_subset_in_json_and_markdown(small_eval, tmp_path):
  note = "on the first 20 of 60 test points"
  checks = {c["name"]: c for c in small_eval["masking_checks"]["checks"]}
  for name in (
    "unbounded eps breaks the model",
    "black-box not stronger than white-box",
    "input gradients are non-zero",
    "predictions deterministic",
  ):
    assert checks[name]["detail"].endswith(f"({note})"), checks[name]
  for name in ("accuracy non-increasing in eps", "iterative at least as strong as single-step"):
    assert "first" not in checks[name]["detail"]  # on the table's own points
  written = ev.write_evaluation(str(tmp_path), small_eval)
  with open(tmp_path / "report.json", encoding="utf-8") as f:
    on_disk = json.load(f)
  assert on_disk["masking_checks"] == written["masking_checks"]
  bb = [c for c in on_disk["masking_checks"]["checks"] if c["name"].startswith("black")][0]
  assert note in bb["detail"]
  md = (tmp_path / "report.md").read_text()
  assert md.count(note) == 4


# Item 5: the gallery and accuracy-vs-eps.


@pytest.mark.slow
def test_evaluation_gallery_puts_successful_adversarial_examples_first(small_eval, mnist):
  clean, adv, labels, pred_clean, pred_adv = small_eval["_gallery"]["pgd"]
  assert len(clean) == 8
  ok = (pred_clean == labels) & (pred_adv != labels)
  # the successes of the first batch (all 60 points here), in test order, then failures
  x, y = mnist["test"].get(np.arange(60))
  n_ok = int(ok.sum())
  assert n_ok >= 1 and list(ok) == [True] * n_ok + [False] * (8 - n_ok)
  rows = [int(np.argmin(np.abs(x - im).reshape(60, -1).sum(-1))) for im in clean]
  assert np.allclose(x[rows], clean) and np.array_equal(y[rows], labels)
  assert rows[:n_ok] == sorted(rows[:n_ok]) and rows[n_ok:] == sorted(rows[n_ok:])
  assert np.all(np.abs(adv - clean).max(axis=(1, 2, 3)) <= 0.1 + 1e-5)


def test_gallery_figure_orders_marks_counts_and_has_a_centred_colour_scale(tmp_path):
  n = 8
  clean = np.stack([np.full((12, 12, 1), (i + 1) / 10, np.float32) for i in range(n)])
  rng = np.random.default_rng(0)
  adv = np.clip(clean + rng.uniform(-0.05, 0.08, clean.shape), 0, 1).astype(np.float32)
  labels = np.arange(n)
  pred_clean = labels.copy()
  pred_clean[1] = 9  # wrong before the attack: not an adversarial example
  pred_adv = labels.copy()
  pred_adv[[1, 4, 6]] = 9  # 4 and 6 are adversarial examples, 1 is not
  fig = plots.adversarial_gallery(clean, adv, labels, pred_clean, pred_adv, title="PGD at eps 0.1")
  assert fig._suptitle.get_text() == "PGD at eps 0.1: 2 of 8 shown are adversarial"
  grid = [ax for ax in fig.axes if ax.images and ax.get_label() != "<colorbar>"]
  assert len(grid) == 3 * n
  rows = [grid[r * n : (r + 1) * n] for r in range(3)]  # subplots are created row-major
  shown = [int(round(float(ax.images[0].get_array().mean()) * 10)) - 1 for ax in rows[0]]
  assert shown == [4, 6, 0, 1, 2, 3, 5, 7]
  status = [ax.get_xlabel().split("\n")[1] for ax in rows[2]]
  assert status[:2] == ["attack succeeded"] * 2
  assert status[2:] == ["attack failed", "failed (clean wrong)"] + ["attack failed"] * 4
  limit = float(np.abs(adv - clean).max())
  for col, ax in zip(shown, rows[1]):
    im = ax.images[0]
    assert im.get_cmap().name == "RdBu_r" and im.get_clim() == pytest.approx((-limit, limit))
    np.testing.assert_allclose(im.get_array(), (adv - clean)[col, ..., 0], atol=1e-6)
  bars = [ax.images[0].colorbar for ax in rows[1] if ax.images[0].colorbar is not None]
  assert len(bars) == 1 and bars[0].ax in fig.axes  # one colour scale for the row
  assert (bars[0].vmin, bars[0].vmax) == pytest.approx((-limit, limit))
  path = str(tmp_path / "g.png")
  assert plots.save_figure(fig, path) == path and os.listdir(tmp_path) == ["g.png"]
  with open(path, "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n" and os.path.getsize(path) > 1000


def _styles(ax):
  """{legend label: (colour, marker)} of the labelled lines of `ax`."""
  return {
    l.get_label(): (matplotlib.colors.to_hex(l.get_color()), l.get_marker())
    for l in ax.get_lines()
    if not l.get_label().startswith("_")
  }


def test_accuracy_vs_eps_gives_every_attack_its_colour_marker_and_label():
  r = _report(ATTACK_NAMES, name="hybrid")
  fig = plots.accuracy_vs_eps({"hybrid": r})
  ax = fig.axes[0]
  styles = _styles(ax)
  points = {
    a: f"{r['attacks'][a]['label']}: {r['attacks'][a]['accuracy']:.3f}"
    for a in ("apgd_ce", "apgd_t", "fab_t", "square", "autoattack")
  }
  assert set(styles) == {"PGD: 0.470 at 0.1", "FGSM: 0.500 at 0.1", *points.values()}
  assert len(set(styles.values())) == len(styles)  # (colour, marker) pairs
  assert len({c for c, _ in styles.values()}) == len(styles)  # and colours alone
  assert len({m for _, m in styles.values()}) == len(styles)  # and markers alone
  assert [t.get_text() for t in fig.legends[0].get_texts()] == list(styles)
  assert any(
    t.get_text().startswith("CW: ") and "(no eps: not plotted)" in t.get_text() for t in fig.texts
  )


def test_accuracy_vs_eps_of_several_runs_keeps_one_marker_per_attack():
  # the runs ran different attack lists: the same position must not mean the same marker
  reports = {
    "std": _report(("fgsm", "pgd", "square"), name="std"),
    "hyb": _report(("fgsm", "pgd", "apgd_ce", "square"), name="hyb"),
  }
  fig = plots.accuracy_vs_eps(reports)
  styles = _styles(fig.axes[0])
  assert len(styles) == 7 and len(set(styles.values())) == 7
  style = lambda run, attack: next(
    v
    for k, v in styles.items()  # label: "... : accuracy"
    if k.startswith(f"{run}: {attack}:")
  )
  marker = lambda run, attack: style(run, attack)[1]
  assert marker("std", "SQUARE") == marker("hyb", "SQUARE") != marker("hyb", "APGD_CE")
  assert marker("std", "PGD") == marker("hyb", "PGD")
  assert len({marker("hyb", a) for a in ("PGD", "FGSM", "APGD_CE", "SQUARE")}) == 4
  assert style("std", "SQUARE")[0] != style("hyb", "SQUARE")[0]  # colour is the run's
