"""Evaluation figures: accuracy vs eps, corruption bars, confidence histograms."""

import re
import textwrap
from typing import Dict, List, Optional

from matplotlib import ticker
from matplotlib.figure import Figure
import numpy as np

from advjax import augment


# One marker per attack, the same in every figure (filled for curves, hollow for
# single points so that points piled at one eps stay visible); colours: one per attack
# for a single report, one per run for several.
_MARKERS = {
  "pgd": "o",
  "fgsm": "v",
  "cw": "P",
  "apgd_ce": "s",
  "apgd_t": "D",
  "fab_t": "^",
  "square": "X",
  "autoattack": "*",
}
_SPARE_MARKERS = "<>hp8dH1234+x|_"
_ORDER = tuple(_MARKERS)


def _attack_styles(reports: Dict[str, Dict]) -> Dict[str, Dict]:
  """{attack name: {"marker": ..., "color": ...}} for every attack of `reports`."""
  names = {"pgd", "fgsm"} | {a for r in reports.values() for a in r.get("attacks", {})}
  ordered = sorted(names, key=lambda a: (_ORDER.index(a) if a in _ORDER else len(_ORDER), a))
  spare = iter(m for m in _SPARE_MARKERS if m not in _MARKERS.values())
  return {
    a: {"marker": _MARKERS.get(a) or next(spare), "color": f"C{i % 10}"}
    for i, a in enumerate(ordered)
  }


def _train_eps(report: Dict) -> Optional[float]:
  """The training attack's (final) eps of a report, read from the setup's "train attack"
  ("pgd eps 0.15, 7 steps"); None when it has none (clean training, a view source
  without eps such as AugMix)."""
  text = str((report.get("setup") or {}).get("train attack", ""))
  match = re.search(r"\beps ([0-9.]+(?:e-?[0-9]+)?)", text)
  return float(match.group(1)) if match else None


def _spread(groups: Dict[float, List], width: float) -> Dict[int, float]:
  """{id of a point: x offset}: the points of a group (one eps) side by side, `width`
  apart, right of the eps (where the curves' own markers sit), so that markers that
  share an eps never cover one another."""
  return {
    id(member): width * (k + 1) for members in groups.values() for k, member in enumerate(members)
  }


def accuracy_vs_eps(
  reports: Dict[str, Dict], *, title: str = "", train_eps: Optional[float] = None
) -> Figure:
  """Accuracy-vs-eps curves (PGD solid, FGSM dashed) of one or more reports, with the
  other eps-bounded attacks as points at their eps.

  Every attack has its own marker (the same in every figure) and legend entry, named by
  the report's label (its budget: "PGD-20 (step 0.1 eps, ...)") with its accuracy at the
  evaluation eps; with one report every attack also has its own colour, with several
  the colour is the run's. Points at the same eps sit side by side, just right of it
  (a small offset in x), so that none hides another or a curve's marker. Vertical lines
  mark the evaluation eps (dashed) and the training eps (dotted), named above the axes. The legend sits below
  the axes, in two columns when the labels are short. Unbounded attacks (eps None,
  e.g. CW-L2) have no eps to sit at: their result is noted under the legend.

  Args:
    reports: {run name: evaluation report} (the report's "accuracy_vs_eps" curve and
      "attacks" entries are drawn).
    title: the axes title; with one report it defaults to the run's name and the
      number of test images.
    train_eps: the training eps to mark (default: each report's, from its setup's
      "train attack", when all reports share one).

  Returns:
    A laid-out Figure (6.4 inches wide; 3.8 high plus the legend); write it with
    `save_figure`.
  """
  styles = _attack_styles(reports)
  single = len(reports) == 1
  fig = Figure(figsize=(6.4, 3.8))
  ax = fig.subplots()
  notes, points, spans = [], [], [0.0]
  eval_eps = set()
  for i, (name, r) in enumerate(reports.items()):
    prefix = "" if single else f"{name}: "
    color = (lambda a: styles[a]["color"]) if single else (lambda a, i=i: f"C{i % 10}")
    attacks = r.get("attacks", {})
    curve = r.get("accuracy_vs_eps") or {}
    labels = r.get("accuracy_vs_eps_labels") or {}
    if curve.get("eps"):
      spans.append(max(curve["eps"]))
      for a, line, default in (("pgd", "-", "PGD"), ("fgsm", "--", "FGSM")):
        if a in curve:
          entry = attacks.get(a) or {}
          at = (
            f": {entry['accuracy']:.3f} at {entry['eps']:g}" if entry.get("eps") is not None else ""
          )
          ax.plot(
            curve["eps"],
            curve[a],
            line,
            marker=styles[a]["marker"],
            color=color(a),
            ms=5,
            alpha=1.0 if a == "pgd" else 0.8,
            label=f"{prefix}{entry.get('label', labels.get(a, default))}{at}",
          )
    for a, v in attacks.items():
      if a in ("fgsm", "pgd") and a in curve:
        if v.get("eps") is not None:
          eval_eps.add(float(v["eps"]))
        continue
      label = f"{prefix}{v.get('label', a)}"
      if v.get("eps") is None:
        if v.get("success_rate") is not None:
          notes.append(
            f"{label}: minimum-norm L2, success rate {v['success_rate']:.3f}"
            + (f", median L2 {v['median_l2']:.3g}" if v.get("median_l2") is not None else "")
            + " (no eps: not plotted)"
          )
        else:
          notes.append(f"{label}: accuracy {v['accuracy']:.3f} (no eps: not plotted)")
        continue
      eval_eps.add(float(v["eps"]))
      points.append((a, v, label, color(a), i))
  if train_eps is None:
    found = {_train_eps(r) for r in reports.values()}
    train_eps = found.pop() if len(found) == 1 else None
  spans += list(eval_eps) + ([train_eps] if train_eps is not None else [])
  points.sort(key=lambda p: (p[4], _ORDER.index(p[0]) if p[0] in _ORDER else len(_ORDER)))
  groups = {}
  for p in points:
    groups.setdefault(round(float(p[1]["eps"]), 9), []).append(p)
  offsets = _spread(groups, 0.018 * max(max(spans), 1e-3))
  for p in points:
    a, v, label, c, _ = p
    ax.plot(
      [v["eps"] + offsets[id(p)]],
      [v["accuracy"]],
      marker=styles[a]["marker"],
      color=c,
      linestyle="none",
      ms=8,
      markerfacecolor="none",
      markeredgewidth=1.5,
      label=f"{label}: {v['accuracy']:.3f}",
    )
  lines = [(e, "--", f"evaluation eps {e:g}") for e in sorted(eval_eps)]
  if train_eps is not None:
    lines.append((train_eps, ":", f"training eps {train_eps:g}"))
  near = len(lines) > 1 and np.ptp([e for e, _, _ in lines]) < 0.3 * max(spans)
  for k, (e, style, text) in enumerate(lines):
    ax.axvline(e, color="0.35", linestyle=style, linewidth=1, zorder=0)
    # Above the frame, where no point can be: "evaluation eps 0.1" over its line.
    ax.annotate(
      text,
      (e, 1.0),
      xycoords=("data", "axes fraction"),
      fontsize=7,
      color="0.25",
      ha="center",
      va="bottom",
      xytext=(0, 2 + 9 * (k % 2) * near),
      textcoords="offset points",
    )
  ax.set_xlabel("eps (Linf)")
  ax.set_ylabel("accuracy")
  ax.set_ylim(0, 1.02)
  ax.set_xlim(-0.03 * max(spans), 1.06 * max(max(spans), 1e-3))
  ax.grid(alpha=0.3)
  if title or single:
    first = next(iter(reports.values()))
    n = first.get("num_test_examples")
    ax.set_title(
      title or f"{next(iter(reports))}: accuracy vs eps" + (f" ({n} test images)" if n else ""),
      fontsize=9,
      pad=(14 + 9 * near) if lines else 6,
    )
  handles, labels = ax.get_legend_handles_labels()
  ncol = 2 if labels and max(len(t) for t in labels) <= 44 else 1
  rows = -(-len(labels) // ncol) if labels else 0
  notes = [textwrap.fill(n, 100, subsequent_indent="    ") for n in notes]
  legend_h = 0.19 * rows + (0.15 * sum(n.count("\n") + 1 for n in notes)) + 0.15
  height = 3.8 + legend_h
  fig.set_size_inches(6.4, height)
  bottom = legend_h / height
  fig.tight_layout(rect=(0, bottom, 1, 1))
  if labels:
    fig.legend(
      handles,
      labels,
      loc="upper center",
      ncol=ncol,
      fontsize=7,
      bbox_to_anchor=(0.5, bottom),
      frameon=False,
      handlelength=1.8,
      columnspacing=1.0,
    )
  if notes:
    fig.text(0.02, 0.01, "\n".join(notes), fontsize=7, va="bottom")
  return fig


def corruption_bars(report: Dict) -> Figure:
  """Bars of the accuracy per corruption (mean over severities, the value on each bar;
  corruptions in the order of `augment.corruption_names("all")`),
  behind them the clean accuracy (dashed) and the mean over corruptions (dotted).

  The title says how many corruptions and severities and on how many test images.

  Args:
    report: an evaluation report with "corruptions" ({"accuracy": {name: {severity:
      accuracy}}, optionally "num_examples" and "mean"}) and "clean_accuracy" (with
      "num_test_examples", the images it was measured on).

  Returns:
    A laid-out Figure (0.5 inch per corruption, at least 6, x 3.9); write it with
    `save_figure`.
  """
  corr = report["corruptions"]
  # The suite's order (noise, blur, weather, digital), whatever order the JSON kept.
  known = augment.corruption_names("all")
  acc = dict(
    sorted(
      corr["accuracy"].items(),
      key=lambda kv: (known.index(kv[0]) if kv[0] in known else len(known), kv[0]),
    )
  )
  names = list(acc)
  means = [np.mean(list(v.values())) for v in acc.values()]
  severities = sorted({int(s) for v in acc.values() for s in v})
  fig = Figure(figsize=(max(6, 0.5 * len(names)), 3.9))
  ax = fig.subplots()
  # The lines sit behind the bars (zorder), so a bar near the clean accuracy keeps its top.
  bars = ax.bar(range(len(names)), means, color="C0", zorder=2)
  for text in ax.bar_label(bars, fmt="%.2f", fontsize=6, padding=1):
    text.set_bbox({"facecolor": "white", "edgecolor": "none", "pad": 0.5, "alpha": 0.8})
  n_clean = report.get("num_test_examples")
  ax.axhline(
    report["clean_accuracy"],
    color="k",
    linestyle="--",
    linewidth=1,
    zorder=1,
    label=f"clean {report['clean_accuracy']:.3f}"
    + (f" ({n_clean} test images)" if n_clean else ""),
  )
  mean = corr.get("mean", float(np.mean(means)) if means else None)
  if mean is not None:
    ax.axhline(
      mean,
      color="C1",
      linestyle=":",
      linewidth=1.2,
      zorder=1,
      label=f"mean over corruptions {mean:.3f}",
    )
  ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
  ax.set_ylabel("accuracy (mean over severities)")
  ax.set_ylim(0, 1.05)
  ax.legend(
    fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False
  )  # above the bars, under the title
  sev = (
    f"severity {severities[0]}"
    if len(severities) == 1
    else f"severities {severities[0]}-{severities[-1]}"
    if severities
    else ""
  )
  n = corr.get("num_examples")
  name = report.get("name")
  ax.set_title(
    f"{name + ': ' if name else ''}accuracy under {len(names)} corruptions"
    f"{', mean over ' + sev if sev else ''}"
    f"{f', {n} test images' if n else ''}",
    fontsize=9,
    pad=20,
  )
  fig.tight_layout()
  return fig


def confidence_histograms(report: Dict) -> Figure:
  """Histograms (log counts) of the max-softmax confidence on clean inputs (filled) and,
  when the report has them, on the adversarial inputs of its calibration attack (an
  outline), each labelled with its expected calibration error; the title names the attack, its eps and the
  number of test images.

  Args:
    report: an evaluation report with "calibration" (num_bins, hist_clean, ece_clean
      and optionally hist_adv, ece_adv, attack) and "attacks" (the attack's label and
      eps).

  Returns:
    A laid-out Figure (6 x 3.8 inches); write it with `save_figure`.
  """
  cal = report["calibration"]
  edges = np.linspace(0, 1, cal["num_bins"] + 1)
  fig = Figure(figsize=(6, 3.8))
  ax = fig.subplots()
  ax.stairs(
    cal["hist_clean"],
    edges,
    fill=True,
    alpha=0.45,
    color="C0",
    label=f"clean (ECE {cal['ece_clean']:.3f})",
  )
  what = "clean inputs"
  if cal.get("hist_adv") is not None:
    entry = (report.get("attacks") or {}).get(cal.get("attack")) or {}
    label = entry.get("label", cal.get("attack"))
    at = f" at eps {entry['eps']:g}" if entry.get("eps") is not None else ""
    ax.stairs(
      cal["hist_adv"],
      edges,
      color="C3",
      linewidth=1.8,  # an outline: both stay visible
      label=f"{label.split(' (')[0]}{at} (ECE {cal['ece_adv']:.3f})",
    )
    what = f"clean and under {label}{at}"
  ax.set_xlabel("max softmax confidence")
  ax.set_ylabel("examples (log scale)")
  ax.set_yscale("log")
  plain = ticker.FuncFormatter(lambda v, _: f"{v:g}")
  ax.yaxis.set_major_formatter(plain)
  ax.yaxis.set_minor_formatter(
    ticker.FuncFormatter(lambda v, _: f"{v:g}" if v > 0 and f"{v:e}"[0] in "25" else "")
  )
  ax.tick_params(axis="y", which="minor", labelsize=7)
  ax.set_ylim(bottom=0.8)
  ax.set_xlim(0, 1)
  ax.legend(fontsize=8, loc="upper left")
  n = int(np.sum(cal["hist_clean"]))
  name = report.get("name")
  ax.set_title(f"{name + ': ' if name else ''}confidence on {n} test images\n{what}", fontsize=9)
  fig.tight_layout()
  return fig
