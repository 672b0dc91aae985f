"""Evaluation figures: accuracy vs eps, corruption bars, confidence histograms."""
from typing import Dict

from matplotlib.figure import Figure
import numpy as np


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


def accuracy_vs_eps(reports: Dict[str, Dict], *, title: str = "") -> Figure:
  """Accuracy-vs-eps curves (PGD solid, FGSM dashed) of one or more reports, with the
  other eps-bounded attacks as points at their eps.

  Every attack has its own marker (the same in every figure) and legend entry; with one
  report every attack also has its own colour, with several the colour is the run's.
  Unbounded attacks (eps None, e.g. CW-L2) have no eps to sit at: their accuracy is
  noted under the axes. The legend sits to the right of the axes.

  Args:
    reports: {run name: evaluation report} (the report's "accuracy_vs_eps" curve and
      "attacks" entries are drawn).
    title: the axes title; with one report it defaults to the run's name.

  Returns:
    A laid-out Figure (6.4 x 4.2 inches); write it with `save_figure`.
  """
  styles = _attack_styles(reports)
  single = len(reports) == 1
  fig = Figure(figsize=(6.4, 4.2))
  ax = fig.subplots()
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
  fig.tight_layout()
  return fig


def corruption_bars(report: Dict) -> Figure:
  """Bars of the accuracy per corruption (mean over severities), with the clean
  accuracy as a dashed line.

  Args:
    report: an evaluation report with "corruptions" ({"accuracy": {name: {severity:
      accuracy}}}) and "clean_accuracy".

  Returns:
    A laid-out Figure (0.5 inch per corruption, at least 6, x 3.6); write it with
    `save_figure`.
  """
  acc = report["corruptions"]["accuracy"]
  names = list(acc)
  means = [np.mean(list(v.values())) for v in acc.values()]
  fig = Figure(figsize=(max(6, 0.5 * len(names)), 3.6))
  ax = fig.subplots()
  ax.bar(range(len(names)), means, color="C0")
  ax.axhline(report["clean_accuracy"], color="k", linestyle="--", label="clean")
  ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
  ax.set_ylabel("accuracy (mean over severities)"); ax.set_ylim(0, 1.02); ax.legend()
  fig.tight_layout()
  return fig


def confidence_histograms(report: Dict) -> Figure:
  """Histograms (log counts) of the max-softmax confidence on clean inputs and, when the
  report has them, on the adversarial inputs of its calibration attack, each labelled
  with its expected calibration error.

  Args:
    report: an evaluation report with "calibration" (num_bins, hist_clean, ece_clean
      and optionally hist_adv, ece_adv, attack).

  Returns:
    A laid-out Figure (6 x 3.6 inches); write it with `save_figure`.
  """
  cal = report["calibration"]
  edges = np.linspace(0, 1, cal["num_bins"] + 1)
  fig = Figure(figsize=(6, 3.6))
  ax = fig.subplots()
  w = edges[1] - edges[0]
  ax.bar(edges[:-1], cal["hist_clean"], width=w, align="edge", alpha=0.6,
         label=f"clean (ECE {cal['ece_clean']:.3f})")
  if cal.get("hist_adv") is not None:
    ax.bar(edges[:-1], cal["hist_adv"], width=w, align="edge", alpha=0.6,
           label=f"{cal['attack']} (ECE {cal['ece_adv']:.3f})")
  ax.set_xlabel("max softmax confidence"); ax.set_ylabel("examples"); ax.set_yscale("log")
  ax.legend()
  fig.tight_layout()
  return fig
