"""The plots convention: every plotting function returns a Figure built outside pyplot
(no path argument, nothing left in pyplot's registry); `save_figure` alone writes, a PNG,
atomically."""

import inspect
import os
import subprocess
import sys

from matplotlib.figure import Figure
import matplotlib.pyplot as plt  # only to check that advjax leaves pyplot alone
import numpy as np
import pytest

from advjax import attacks, plots

# What the data helpers of `plots` return instead of a Figure (they feed the figures).
DATA_HELPERS = {"augmentation_examples", "gallery_captions", "perturbation_examples"}


def test_every_plotting_function_returns_a_figure_and_takes_no_path():
  for name in plots.__all__:
    params = inspect.signature(getattr(plots, name)).parameters
    if name == "save_figure":
      assert (
        list(params)[:2] == ["fig", "path"] and params["dpi"].kind == params["dpi"].KEYWORD_ONLY
      )
      continue
    assert not {"path", "out", "output", "filename"} & set(params), name
    if name not in DATA_HELPERS:
      assert inspect.signature(getattr(plots, name)).return_annotation is Figure, name


def _records():
  train = [
    {
      "kind": "train",
      "step": s,
      "loss": 2.0 / s,
      "loss_clean": 1.0 / s,
      "loss_adv": 1.5 / s,
      "acc_clean": 0.5,
      "acc_adv": 0.3,
      "alpha": 0.4,
      "eps": 0.01 * s,
    }
    for s in range(1, 6)
  ]
  return train + [{"kind": "val", "step": 5, "val_acc_clean": 0.9, "val_acc_adv": 0.6}]


def _figures():
  """{name: a cheap call of each plotting function}."""
  rng = np.random.default_rng(0)
  clean = rng.uniform(size=(3, 8, 8, 1)).astype(np.float32)
  adv = np.clip(clean + 0.05, 0, 1)
  report = {
    "clean_accuracy": 0.9,
    "attacks": {
      "fgsm": {"label": "FGSM", "eps": 0.1, "accuracy": 0.5},
      "pgd": {"label": "PGD", "eps": 0.1, "accuracy": 0.3},
      "square": {"label": "Square", "eps": 0.1, "accuracy": 0.4},
      "cw": {"label": "CW", "eps": None, "accuracy": 0.2},
    },
    "accuracy_vs_eps": {"eps": [0.0, 0.1], "fgsm": [0.9, 0.5], "pgd": [0.9, 0.3]},
    "calibration": {
      "num_bins": 4,
      "ece_clean": 0.1,
      "hist_clean": [1, 2, 3, 4],
      "attack": "pgd",
      "ece_adv": 0.3,
      "hist_adv": [4, 3, 2, 1],
    },
    "corruptions": {
      "accuracy": {"gaussian_noise": {"1": 0.8, "2": 0.6}, "fog": {"1": 0.7, "2": 0.5}}
    },
  }
  hp = {
    "type": np.array(["FGS", "FGS", "HC-D-2", "HC-D-1"]),
    "factor": np.array([1.0, 1.05, 1.0, 1.0]),
    "pass_score": np.array([0.9, 0.8, 0.95, 0.7]),
  }
  d = lambda v: np.full((3, 1), v)
  results = {
    "FGS": attacks.MinimalAdversarial(
      scale=d(0.1),
      images=adv[:, None],
      success=np.array([[True], [False], [True]]),
      pass_score=d(0.9),
      l2=d(1e-3),
      linf=d(0.05),
      tolerance=d(1e-3),
      predictions=d(7),
    )
  }
  return {
    "training_curves": lambda: plots.training_curves(_records()),
    "accuracy_vs_eps": lambda: plots.accuracy_vs_eps({"r": report}, title="t"),
    "confidence_histograms": lambda: plots.confidence_histograms(report),
    "corruption_bars": lambda: plots.corruption_bars(report),
    "adversarial_gallery": lambda: plots.adversarial_gallery(
      clean, adv, [0, 1, 2], [0, 1, 5], [3, 1, 5], title="x", captions=["a", "b", "c"]
    ),
    "pass_distribution_figure": lambda: plots.pass_distribution_figure(hp, tau=0.85),
    "pass_examples_figure": lambda: plots.pass_examples_figure(
      None, clean, [0, 1, 2], results=results
    ),
    "corruption_grid": lambda: plots.corruption_grid(
      clean[0], names=("brightness",), severities=(1, 5)
    ),
  }


def test_plotting_functions_draw_figures_that_pyplot_never_holds(tmp_path):
  before = plt.get_fignums()
  calls = _figures()
  for name, call in calls.items():
    fig = call()
    assert isinstance(fig, Figure) and fig.axes, name
    path = plots.save_figure(fig, tmp_path / f"{name}.png", dpi=50)
    with open(path, "rb") as f:
      assert f.read(8) == b"\x89PNG\r\n\x1a\n", name
  assert plt.get_fignums() == before  # nothing registered with pyplot
  assert sorted(os.listdir(tmp_path)) == sorted(f"{n}.png" for n in calls)  # no temp files
  # The rest of the figure functions (augmentation_grid compiles one program per
  # column, minutes on a CPU) run in colab/03_augmentations.ipynb.
  assert set(plots.__all__) - set(calls) - DATA_HELPERS == {"save_figure", "augmentation_grid"}


def test_save_figure_replaces_whole_files_and_leaves_nothing_on_failure(tmp_path):
  path = str(tmp_path / "f.png")
  small = Figure(figsize=(1, 1))
  small.subplots().plot([0, 1])
  assert plots.save_figure(small, path, dpi=20) == path
  first = open(path, "rb").read()
  big = Figure(figsize=(3, 2))
  big.subplots().plot([1, 0])
  plots.save_figure(big, path, dpi=40)
  second = open(path, "rb").read()
  assert second != first and os.listdir(tmp_path) == ["f.png"]

  class Broken(Figure):
    def savefig(self, fname, **kwargs):  # pylint: disable=arguments-differ
      fname.write(b"\x89PNG half")
      raise OSError("disk full")

  with pytest.raises(OSError, match="disk full"):
    plots.save_figure(Broken(), path)
  assert open(path, "rb").read() == second and os.listdir(tmp_path) == ["f.png"]
  with pytest.raises(FileNotFoundError):
    plots.save_figure(big, tmp_path / "missing" / "f.png")


def test_save_figure_closes_figures_that_pyplot_manages(tmp_path):
  fig = plt.figure()
  assert fig.number in plt.get_fignums()
  plots.save_figure(fig, tmp_path / "p.png", dpi=20)
  assert fig.number not in plt.get_fignums()


def test_importing_advjax_leaves_pyplot_and_the_backend_alone():
  code = (
    "import sys, matplotlib; matplotlib.use('svg'); import advjax, advjax.plots; "
    "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'; "
    "assert matplotlib.get_backend() == 'svg', matplotlib.get_backend()"
  )
  r = subprocess.run(
    [sys.executable, "-c", code],
    capture_output=True,
    text=True,
    cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    check=False,
  )
  assert r.returncode == 0, r.stderr[-2000:]


# What a reader of a paper needs from each figure: axes that say what they measure, the
# eps every number was measured at, and no mark hiding another.


def _growing_eps_records():
  """Two epochs of 3 steps, the training eps growing from 0.015 to 0.15."""
  eps = np.linspace(0.015, 0.15, 6)
  train = [
    {
      "kind": "train",
      "step": s + 1,
      "loss": 1.0,
      "loss_clean": 0.5,
      "loss_adv": 1.5,
      "acc_clean": 0.8,
      "acc_adv": 0.5,
      "alpha": 0.5,
      "eps": float(e),
    }
    for s, e in enumerate(eps)
  ]
  val = [
    {
      "kind": "val",
      "step": 3 * k,
      "epoch": k,
      "eps": float(eps[3 * k - 1]),
      "val_acc_clean": 0.9,
      "val_acc_adv": 0.6 + 0.1 * k,
    }
    for k in (1, 2)
  ]
  return train + val


def _battery_report():
  """The 8-attack battery at eps 0.1: five attacks share one accuracy."""
  attacks = {
    "fgsm": ("FGSM", 0.5),
    "pgd": ("PGD-20 (step 0.01, 1 restart, random start)", 0.3),
    "apgd_ce": ("APGD-CE (100 steps)", 0.25),
    "apgd_t": ("APGD-T (100 steps)", 0.25),
    "fab_t": ("FAB-T (100 steps)", 0.25),
    "square": ("Square (5000 queries)", 0.25),
    "autoattack": ("AutoAttack (standard)", 0.25),
  }
  report = {
    "name": "run",
    "num_test_examples": 100,
    "clean_accuracy": 0.97,
    "attacks": {a: {"label": l, "eps": 0.1, "accuracy": v} for a, (l, v) in attacks.items()},
    "accuracy_vs_eps": {"eps": [0.0, 0.05, 0.1], "fgsm": [0.97, 0.7, 0.5], "pgd": [0.97, 0.6, 0.3]},
    "setup": {"train attack": "pgd eps 0.15, 7 steps"},
    "calibration": {
      "num_bins": 4,
      "ece_clean": 0.1,
      "hist_clean": [1, 2, 3, 94],
      "attack": "pgd",
      "ece_adv": 0.3,
      "hist_adv": [40, 30, 20, 10],
    },
    "corruptions": {
      "num_examples": 50,
      "mean": 0.9,
      "accuracy": {"brightness": {"1": 0.97, "5": 0.97}, "fog": {"1": 0.8, "5": 0.6}},
    },
  }
  report["attacks"]["cw"] = {"label": "CW-L2 (100 steps)", "eps": None, "accuracy": 0.0}
  return report


def _drawn(fig):
  fig.draw_without_rendering()  # lays out text, so extents are final
  return fig


def test_training_curves_label_every_axis_and_say_the_eps_of_each_accuracy():
  report = _battery_report()
  fig = _drawn(plots.training_curves(_growing_eps_records(), report=report))
  panels = [ax for ax in fig.axes if ax.get_lines() or ax.get_ylabel()]
  assert len(panels) == 4
  assert all(ax.get_ylabel() for ax in panels), [ax.get_ylabel() for ax in panels]
  assert [ax.get_xlabel() for ax in panels] == ["epoch"] * 4
  # A val record at step 6 of epoch 2 sits at x = 2 (steps per epoch from the records).
  acc = panels[1]
  texts = [t.get_text() for t in acc.get_legend().get_texts()]
  val_adv = [t for t in texts if t.startswith("validation adversarial")]
  assert val_adv == ["validation adversarial (at training eps, 0.069->0.15)"], texts
  line = next(l for l in acc.get_lines() if l.get_label() == val_adv[0])
  np.testing.assert_allclose(line.get_xdata(), [1.0, 2.0])
  assert any("PGD-20 at evaluation eps 0.1: 0.300" in t for t in texts), texts
  eps_panel = panels[3]
  assert "0.015->0.15" in eps_panel.get_title()
  eval_line = [l for l in eps_panel.get_lines() if l.get_label() == "evaluation eps 0.1"]
  assert eval_line and np.allclose(eval_line[0].get_ydata(), 0.1)
  assert fig.get_suptitle() == "run: training curves"


def test_accuracy_vs_eps_spreads_piled_points_and_keeps_the_legend_compact():
  fig = _drawn(plots.accuracy_vs_eps({"run": _battery_report()}))
  ax = fig.axes[0]
  legend = fig.legends[0] if fig.legends else ax.get_legend()
  texts = [t.get_text() for t in legend.get_texts()]
  assert not any("(curve)" in t for t in texts), texts
  assert "PGD-20 (step 0.01, 1 restart, random start): 0.300 at 0.1" in texts
  assert "Square (5000 queries): 0.250" in texts
  # Below the axes, no wider than the figure: the axes keep the figure's width.
  box, frame = legend.get_window_extent(), ax.get_window_extent()
  assert box.y1 <= frame.y0 and box.x0 >= 0 and box.x1 <= fig.bbox.width
  assert frame.width >= 0.75 * fig.bbox.width
  # The five attacks at (0.1, 0.25) are drawn apart: > 6 pixels between any two centres.
  piled = [l for l in ax.get_lines() if len(l.get_xdata()) == 1 and l.get_ydata()[0] == 0.25]
  assert len(piled) == 5
  centres = np.array([ax.transData.transform((l.get_xdata()[0], 0.25)) for l in piled])
  gaps = np.abs(centres[:, None, 0] - centres[None, :, 0]) + 1e3 * np.eye(5)
  assert gaps.min() > 6, gaps
  xs = [l.get_xdata()[0] for l in piled]  # slightly right of eps, off the curves' markers
  assert all(0.1 < x < 0.1 + 0.1 * 0.15 for x in xs), xs
  assert [t for t in texts if t[:3] in ("APG", "FAB", "Squ", "Aut")] == [
    "APGD-CE (100 steps): 0.250",
    "APGD-T (100 steps): 0.250",
    "FAB-T (100 steps): 0.250",
    "Square (5000 queries): 0.250",
    "AutoAttack (standard): 0.250",
  ]
  # The evaluation and training eps as labelled vertical lines.
  verticals = {
    round(l.get_xdata()[0], 6)
    for l in ax.get_lines()
    if len(set(l.get_xdata())) == 1 and len(l.get_xdata()) == 2
  }
  assert verticals == {0.1, 0.15}
  labels = {t.get_text() for t in ax.texts}
  assert {"evaluation eps 0.1", "training eps 0.15"} <= labels
  assert "100 test images" in ax.get_title()


def test_confidence_and_corruption_figures_say_what_and_at_which_eps():
  report = _battery_report()
  conf = _drawn(plots.confidence_histograms(report)).axes[0]
  assert "eps 0.1" in conf.get_title() and "100 test images" in conf.get_title()
  assert "PGD-20 (step 0.01" in conf.get_title()
  bars = _drawn(plots.corruption_bars(report)).axes[0]
  assert "50 test images" in bars.get_title() and "2 corruptions" in bars.get_title()
  assert bars.get_ylim()[1] >= 1.05
  clean = next(l for l in bars.get_lines() if l.get_label().startswith("clean 0.970"))
  # The bar at 0.97 (brightness) is drawn over the clean line at 0.97: its top shows.
  assert max(p.get_height() for p in bars.patches) == 0.97
  assert all(clean.get_zorder() < p.get_zorder() for p in bars.patches)
  assert clean.get_linestyle() == "--"


def test_gallery_caption_is_the_reports_l2_of_the_same_pair():
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from advjax.eval import _suite  # pylint: disable=import-outside-toplevel

  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.uniform(size=(3, 8, 8, 1)), jnp.float32)
  y = jnp.array([0, 1, 2])

  def attack(key, logits_fn, x, y, eps, example_ids=None):  # pylint: disable=unused-argument
    return jnp.clip(x + eps * jnp.sign(jax.random.normal(key, x.shape)), 0, 1)

  logits_fn = lambda im: im.reshape(im.shape[0], -1)[:, :3]
  x_adv, _, _, l2, _, _ = _suite._jit_attack(logits_fn, attack)(  # pylint: disable=protected-access
    jax.random.key(0), x, y, 0.1, jnp.arange(3)
  )
  captions = plots.gallery_captions(np.asarray(x), np.asarray(x_adv), pass_scores=[0.9, 0.8, 0.7])
  assert captions == [f"PASS {p:.3f}\nL2 {a:.2f}" for p, a in zip([0.9, 0.8, 0.7], np.asarray(l2))]
  assert np.asarray(l2).min() > 0.3  # the plain L2 norm, not per pixel (~0.005 here)
  fig = _drawn(
    plots.adversarial_gallery(
      np.asarray(x), np.asarray(x_adv), [0, 1, 2], [0, 1, 2], [1, 1, 2], captions=captions
    )
  )
  xlabels = [ax.get_xlabel() for ax in fig.axes if ax.get_xlabel()]
  assert any(f"L2 {float(l2[0]):.2f}" in t for t in xlabels), xlabels
