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
DATA_HELPERS = {"augmentation_examples", "perturbation_examples"}


def test_every_plotting_function_returns_a_figure_and_takes_no_path():
  for name in plots.__all__:
    params = inspect.signature(getattr(plots, name)).parameters
    if name == "save_figure":
      assert list(params)[:2] == ["fig", "path"] and params["dpi"].kind == params[
          "dpi"].KEYWORD_ONLY
      continue
    assert not {"path", "out", "output", "filename"} & set(params), name
    if name not in DATA_HELPERS:
      assert inspect.signature(getattr(plots, name)).return_annotation is Figure, name


def _records():
  train = [{"kind": "train", "step": s, "loss": 2.0 / s, "loss_clean": 1.0 / s,
            "loss_adv": 1.5 / s, "acc_clean": 0.5, "acc_adv": 0.3, "alpha": 0.4,
            "eps": 0.01 * s} for s in range(1, 6)]
  return train + [{"kind": "val", "step": 5, "val_acc_clean": 0.9, "val_acc_adv": 0.6}]


def _figures():
  """{name: a cheap call of each plotting function}."""
  rng = np.random.default_rng(0)
  clean = rng.uniform(size=(3, 8, 8, 1)).astype(np.float32)
  adv = np.clip(clean + 0.05, 0, 1)
  report = {
      "clean_accuracy": 0.9,
      "attacks": {"fgsm": {"label": "FGSM", "eps": 0.1, "accuracy": 0.5},
                  "pgd": {"label": "PGD", "eps": 0.1, "accuracy": 0.3},
                  "square": {"label": "Square", "eps": 0.1, "accuracy": 0.4},
                  "cw": {"label": "CW", "eps": None, "accuracy": 0.2}},
      "accuracy_vs_eps": {"eps": [0.0, 0.1], "fgsm": [0.9, 0.5], "pgd": [0.9, 0.3]},
      "calibration": {"num_bins": 4, "ece_clean": 0.1, "hist_clean": [1, 2, 3, 4],
                      "attack": "pgd", "ece_adv": 0.3, "hist_adv": [4, 3, 2, 1]},
      "corruptions": {"accuracy": {"gaussian_noise": {"1": 0.8, "2": 0.6},
                                   "fog": {"1": 0.7, "2": 0.5}}}}
  hp = {"type": np.array(["FGS", "FGS", "HC-D-2", "HC-D-1"]),
        "factor": np.array([1.0, 1.05, 1.0, 1.0]), "pass_score": np.array([.9, .8, .95, .7])}
  d = lambda v: np.full((3, 1), v)
  results = {"FGS": attacks.MinimalAdversarial(
      scale=d(0.1), images=adv[:, None], success=np.array([[True], [False], [True]]),
      pass_score=d(0.9), l2=d(1e-3), linf=d(0.05), tolerance=d(1e-3), predictions=d(7))}
  return {
      "training_curves": lambda: plots.training_curves(_records()),
      "accuracy_vs_eps": lambda: plots.accuracy_vs_eps({"r": report}, title="t"),
      "confidence_histograms": lambda: plots.confidence_histograms(report),
      "corruption_bars": lambda: plots.corruption_bars(report),
      "adversarial_gallery": lambda: plots.adversarial_gallery(
          clean, adv, [0, 1, 2], [0, 1, 5], [3, 1, 5], title="x", captions=["a", "b", "c"]),
      "pass_distribution_figure": lambda: plots.pass_distribution_figure(hp, tau=0.85),
      "pass_examples_figure": lambda: plots.pass_examples_figure(
          None, clean, [0, 1, 2], results=results),
      "corruption_grid": lambda: plots.corruption_grid(
          clean[0], names=("brightness",), severities=(1, 5)),
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
  assert plt.get_fignums() == before                     # nothing registered with pyplot
  assert sorted(os.listdir(tmp_path)) == sorted(f"{n}.png" for n in calls)  # no temp files
  # The rest of the figure functions (augmentation_grid compiles one program per
  # column, minutes on a CPU) run in colab/03_augmentations.ipynb.
  assert set(plots.__all__) - set(calls) - DATA_HELPERS == {"save_figure",
                                                           "augmentation_grid"}


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
  code = ("import sys, matplotlib; matplotlib.use('svg'); import advjax, advjax.plots; "
          "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'; "
          "assert matplotlib.get_backend() == 'svg', matplotlib.get_backend()")
  r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                     cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                     check=False)
  assert r.returncode == 0, r.stderr[-2000:]
