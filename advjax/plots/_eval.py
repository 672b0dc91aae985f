"""Evaluation figures: accuracy vs eps, corruption bars, confidence histograms."""
from typing import Dict, Optional, Sequence

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from advjax.plots._training import _save


def accuracy_vs_eps(reports: Dict[str, Dict], path: str, title: str = "") -> str:
  """Accuracy-vs-eps curves (FGSM dashed, PGD solid) of one or more reports, with
  the other attacks as points at their eps."""
  fig, ax = plt.subplots(figsize=(6, 4))
  for i, (name, r) in enumerate(reports.items()):
    color = f"C{i}"
    curve = r.get("accuracy_vs_eps") or {}
    if curve.get("eps"):
      if "pgd" in curve:
        ax.plot(curve["eps"], curve["pgd"], "-o", color=color, label=f"{name}: PGD", ms=4)
      if "fgsm" in curve:
        ax.plot(curve["eps"], curve["fgsm"], "--", color=color, alpha=0.7,
                label=f"{name}: FGSM")
    for j, (a, v) in enumerate(r.get("attacks", {}).items()):
      if a not in ("fgsm", "pgd") and v.get("eps") is not None:
        ax.plot([v["eps"]], [v["accuracy"]], marker="sxd^v*"[j % 6], color=color,
                linestyle="none", label=f"{name}: {a}")
  ax.set_xlabel("eps (Linf)"); ax.set_ylabel("accuracy"); ax.set_ylim(0, 1.02)
  ax.grid(alpha=0.3); ax.legend(fontsize=7)
  if title:
    ax.set_title(title)
  _save(fig, path)
  return path


def corruption_bars(report: Dict, path: str) -> str:
  """Accuracy per corruption (mean over severities), with the clean accuracy as a line."""
  acc = report["corruptions"]["accuracy"]
  names = list(acc)
  means = [np.mean(list(v.values())) for v in acc.values()]
  fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(names)), 3.6))
  ax.bar(range(len(names)), means, color="C0")
  ax.axhline(report["clean_accuracy"], color="k", linestyle="--", label="clean")
  ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
  ax.set_ylabel("accuracy (mean over severities)"); ax.set_ylim(0, 1.02); ax.legend()
  _save(fig, path)
  return path


def confidence_histograms(report: Dict, path: str) -> str:
  """Histograms of max-softmax confidence on clean and adversarial inputs."""
  cal = report["calibration"]
  edges = np.linspace(0, 1, cal["num_bins"] + 1)
  fig, ax = plt.subplots(figsize=(6, 3.6))
  w = edges[1] - edges[0]
  ax.bar(edges[:-1], cal["hist_clean"], width=w, align="edge", alpha=0.6,
         label=f"clean (ECE {cal['ece_clean']:.3f})")
  if cal.get("hist_adv") is not None:
    ax.bar(edges[:-1], cal["hist_adv"], width=w, align="edge", alpha=0.6,
           label=f"{cal['attack']} (ECE {cal['ece_adv']:.3f})")
  ax.set_xlabel("max softmax confidence"); ax.set_ylabel("examples"); ax.set_yscale("log")
  ax.legend()
  _save(fig, path)
  return path
