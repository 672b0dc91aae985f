"""Evaluation figures: accuracy vs eps, corruption bars, confidence histograms."""
from typing import Dict, Optional, Sequence

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from advjax.plots._training import save_figure


# One marker per attack, the same in every figure (filled for curves, hollow for
# single points so that points piled at one eps stay visible); colours: one per attack
# for a single report, one per run for several.
_MARKERS = {"pgd": "o", "fgsm": "v", "cw": "P", "apgd_ce": "s", "apgd_t": "D", "fab_t": "^",
            "square": "X", "autoattack": "*"}
_SPARE_MARKERS = "<>hp8dH1234+x|_"
_ORDER = tuple(_MARKERS)


def _attack_styles(reports: Dict[str, Dict]) -> Dict[str, Dict]:
  """{attack name: {"marker": ..., "color": ...}} for every attack of `reports`."""
  names = {"pgd", "fgsm"} | {a for r in reports.values() for a in r.get("attacks", {})}
  ordered = sorted(names, key=lambda a: (_ORDER.index(a) if a in _ORDER else len(_ORDER), a))
  spare = iter(m for m in _SPARE_MARKERS if m not in _MARKERS.values())
  return {a: {"marker": _MARKERS.get(a) or next(spare), "color": f"C{i % 10}"}
          for i, a in enumerate(ordered)}


def accuracy_vs_eps(reports: Dict[str, Dict], path: str, title: str = "") -> str:
  """Accuracy-vs-eps curves (PGD solid, FGSM dashed) of one or more reports, with the
  other eps-bounded attacks as points at their eps.

  Every attack has its own marker (the same in every figure) and legend entry; with one
  report every attack also has its own colour, with several the colour is the run's.
  Unbounded attacks (eps None, e.g. CW-L2) have no eps to sit at: their accuracy is
  noted under the axes.
  """
  styles = _attack_styles(reports)
  single = len(reports) == 1
  fig, ax = plt.subplots(figsize=(6.4, 4.2))
  notes = []
  for i, (name, r) in enumerate(reports.items()):
    prefix = "" if single else f"{name}: "
    color = lambda a: styles[a]["color"] if single else f"C{i % 10}"
    curve = r.get("accuracy_vs_eps") or {}
    if curve.get("eps"):
      for a, line, label in (("pgd", "-", "PGD"), ("fgsm", "--", "FGSM")):
        if a in curve:
          ax.plot(curve["eps"], curve[a], line, marker=styles[a]["marker"], color=color(a),
                  ms=5, alpha=1.0 if a == "pgd" else 0.8, label=f"{prefix}{label} (curve)")
    for a, v in r.get("attacks", {}).items():
      if a in ("fgsm", "pgd") and a in curve:
        continue
      label = f"{prefix}{v.get('label', a)}"
      if v.get("eps") is None:
        notes.append(f"{label}: accuracy {v['accuracy']:.3f} (no eps: not plotted)")
        continue
      ax.plot([v["eps"]], [v["accuracy"]], marker=styles[a]["marker"], color=color(a),
              linestyle="none", ms=9, markerfacecolor="none", markeredgewidth=1.6,
              label=label)
  ax.set_xlabel("eps (Linf)"); ax.set_ylabel("accuracy"); ax.set_ylim(0, 1.02)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
  if notes:
    ax.text(0.0, -0.16, "\n".join(notes), transform=ax.transAxes,
            fontsize=7, va="top")
  if title or single:
    ax.set_title(title or next(iter(reports)), fontsize=9)
  save_figure(fig, path)
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
  save_figure(fig, path)
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
  save_figure(fig, path)
  return path
