"""report.json (versioned, validated schema) and report.md, written atomically."""

import json
import os
from typing import Any, Dict

from advjax import _files

# 2: attack entries have a "kind": "bounded" (eps-ball: accuracy, robustness gap) or
# "min_norm" (no eps: success rate, minimal L2 norms, accuracy at L2 thresholds).
SCHEMA_VERSION = 2

# key -> allowed types (None allowed where the section is optional)
_SCHEMA = {
  "schema_version": (int,),
  "name": (str,),
  "num_test_examples": (int,),
  "clean_accuracy": (float, int),
  "clean_confidence": (float, int),
  "attacks": (dict,),
  "robustness_gap": (dict,),
  "accuracy_vs_eps": (dict,),
  "calibration": (dict,),
  "corruptions": (dict, type(None)),
  "flip_rate": (dict, type(None)),
  "masking_checks": (dict, type(None)),
  "eval_time_s": (float, int),
  "figures": (list,),
}
_ATTACK_KEYS = {
  "label": (str,),
  "eps": (float, int, type(None)),
  "norm": (str,),
  "accuracy": (float, int),
  "confidence": (float, int),
  "median_l2": (float, int, type(None)),
  "median_linf": (float, int, type(None)),
  "time_s": (float, int),
  "kind": (str,),
}
# the entries of a minimum-norm attack (kind "min_norm"), besides _ATTACK_KEYS; its
# "accuracy" is the fraction of points it did not break (1 - success_rate)
_MIN_NORM_KEYS = {
  "success_rate": (float, int),
  "num_unbroken": (int,),
  "mean_l2": (float, int, type(None)),
  "l2_thresholds": (list,),
  "accuracy_at_l2": (list,),
}
ATTACK_KINDS = ("bounded", "min_norm")


def validate_report(report: Dict[str, Any]) -> None:
  """Checks a report against the schema of SCHEMA_VERSION.

  Raises:
    ValueError: naming the first missing or mistyped key.
  """
  if report.get("schema_version") != SCHEMA_VERSION:
    raise ValueError(
      f"report schema_version {report.get('schema_version')!r} is not "
      f"{SCHEMA_VERSION}; re-run the evaluation with this advjax."
    )
  for key, types in _SCHEMA.items():
    if key not in report:
      raise ValueError(f"report is missing {key!r}.")
    if not isinstance(report[key], types):
      raise ValueError(f"report[{key!r}] must be {types}; got {type(report[key])}.")
  for name, a in report["attacks"].items():
    for key, types in _ATTACK_KEYS.items():
      if not isinstance(a.get(key, KeyError), types):
        raise ValueError(f"report['attacks'][{name!r}][{key!r}] missing or not {types}.")
    if not 0.0 <= a["accuracy"] <= 1.0:
      raise ValueError(f"report['attacks'][{name!r}]['accuracy'] outside [0, 1].")
    if a["kind"] not in ATTACK_KINDS:
      raise ValueError(
        f"report['attacks'][{name!r}]['kind'] must be one of {ATTACK_KINDS}; got {a['kind']!r}."
      )
    if a["kind"] == "min_norm":
      for key, types in _MIN_NORM_KEYS.items():
        if not isinstance(a.get(key, KeyError), types):
          raise ValueError(
            f"report['attacks'][{name!r}][{key!r}] missing or not {types} (a minimum-norm attack)."
          )
      if len(a["accuracy_at_l2"]) != len(a["l2_thresholds"]):
        raise ValueError(
          f"report['attacks'][{name!r}]['accuracy_at_l2'] has "
          f"{len(a['accuracy_at_l2'])} values for "
          f"{len(a['l2_thresholds'])} thresholds."
        )
      if name in report["robustness_gap"]:
        raise ValueError(
          f"report['robustness_gap'] has {name!r}, a minimum-norm attack "
          f"(no eps: it has no robustness gap)."
        )
  curve = report["accuracy_vs_eps"]
  for k, v in curve.items():
    if len(v) != len(curve.get("eps", [])):
      raise ValueError(
        f"report['accuracy_vs_eps'][{k!r}] has {len(v)} points for "
        f"{len(curve.get('eps', []))} eps values."
      )
  if report["masking_checks"] is not None:
    for c in report["masking_checks"]["checks"]:
      if not {"name", "passed", "value", "threshold", "detail"} <= set(c):
        raise ValueError(f"masking check {c} lacks fields.")


def _to_jsonable(x):
  if isinstance(x, dict):
    return {str(k): _to_jsonable(v) for k, v in x.items() if not str(k).startswith("_")}
  if isinstance(x, (list, tuple)):
    return [_to_jsonable(v) for v in x]
  if hasattr(x, "item") and getattr(x, "size", 2) == 1:
    return x.item()
  return x


def write_report(workdir: str, report: Dict[str, Any]) -> Dict[str, Any]:
  """Validates and writes workdir/report.json and workdir/report.md; returns the JSON dict."""
  report = dict(_to_jsonable(report), schema_version=SCHEMA_VERSION)
  validate_report(report)
  _files.atomic_write_text(
    os.path.join(workdir, "report.json"), json.dumps(report, indent=2, sort_keys=True)
  )
  _files.atomic_write_text(os.path.join(workdir, "report.md"), render_markdown(report))
  return report


def _absent(v) -> bool:
  """None or NaN: a value the report does not have."""
  if v is None:
    return True
  try:
    return bool(v != v)  # NaN, including NumPy scalars
  except (TypeError, ValueError):
    return False


def _f(v, fmt=".4f") -> str:
  """A number formatted with `fmt`; "-" when absent (None or NaN)."""
  return "-" if _absent(v) else format(v, fmt)


def _cell(v) -> str:
  """Any value as markdown text: "-" when absent, floats in 4 significant digits,
  lists item by item."""
  if isinstance(v, (list, tuple)):
    return ", ".join(_cell(x) for x in v) if v else "-"
  if _absent(v):
    return "-"
  if isinstance(v, float):
    return format(v, ".4g")
  return str(v)


def _diff(a, b, fmt=".4f") -> str:
  return "-" if _absent(a) or _absent(b) else format(a - b, fmt)


def render_markdown(r: Dict[str, Any]) -> str:
  """A readable report: setup, accuracy table, calibration, corruptions, flip rates,
  masking checks, cost, figures. Absent values (None, NaN) read "-"."""
  lines = [f"# advjax report: {r.get('name', '')}", ""]
  setup = r.get("setup") or {}
  if setup:
    lines += ["| setting | value |", "|---|---|"] + [
      f"| {k} | {_cell(v)} |" for k, v in setup.items()
    ]
    lines.append("")
  clean = r.get("clean_accuracy")
  lines += [
    f"## Accuracy on {r['num_test_examples']} held-out test images",
    "",
    "| evaluation | eps | accuracy | robustness gap | mean confidence | median L2 | median Linf |",
    "|---|---|---|---|---|---|---|",
    f"| clean | - | {_f(clean)} | - | {_f(r.get('clean_confidence'))} | - | - |",
  ]
  attacks = r.get("attacks", {})
  min_norm = {n: a for n, a in attacks.items() if a.get("kind") == "min_norm"}
  for name, a in attacks.items():
    if name in min_norm:
      continue
    eps = "-" if _absent(a.get("eps")) else f"{a['eps']:g} ({a.get('norm', 'linf')})"
    lines.append(
      f"| {a.get('label', name)} | {eps} | {_f(a.get('accuracy'))} | "
      f"{_diff(clean, a.get('accuracy'))} | {_f(a.get('confidence'))} | "
      f"{_f(a.get('median_l2'))} | {_f(a.get('median_linf'))} |"
    )
  lines.append("")
  if min_norm:
    ts = sorted({t for a in min_norm.values() for t in a.get("l2_thresholds", [])})
    lines += [
      "### Minimum-norm attacks (no eps)",
      "",
      "A point is broken when its adversarial example is misclassified (points "
      "misclassified clean count at L2 0); norms are over the broken points; "
      "accuracy at L2 t counts the points correct or broken only beyond t.",
      "",
      "| "
      + " | ".join(
        ["attack", "success rate", "unbroken", "median L2", "mean L2"]
        + [f"accuracy at L2 {t:g}" for t in ts]
      )
      + " |",
      "|---|---|---|---|---|" + "---|" * len(ts),
    ]
    for name, a in min_norm.items():
      at = dict(zip(a.get("l2_thresholds", []), a.get("accuracy_at_l2", [])))
      cells = [
        a.get("label", name),
        _f(a.get("success_rate")),
        _cell(a.get("num_unbroken")),
        _f(a.get("median_l2")),
        _f(a.get("mean_l2")),
      ] + [_f(at.get(t)) for t in ts]
      lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
  curve = r.get("accuracy_vs_eps") or {}
  labels = r.get("accuracy_vs_eps_labels") or {}
  if curve.get("eps"):
    lines += [
      "### Accuracy vs eps (Linf)",
      "",
      "| attack | " + " | ".join(_f(e, "g") for e in curve["eps"]) + " |",
      "|---|" + "---|" * len(curve["eps"]),
    ]
    lines += [
      f"| {labels.get(k, k)} | " + " | ".join(_f(v, ".3f") for v in vals) + " |"
      for k, vals in curve.items()
      if k != "eps"
    ]
    lines.append("")
  cal = r.get("calibration") or {}
  if cal:
    lines += [
      "## Calibration",
      "",
      f"Expected calibration error (15 bins): clean "
      f"{_f(cal.get('ece_clean'))}"
      + (f", under {cal['attack']} {_f(cal.get('ece_adv'))}" if cal.get("attack") else "")
      + ".",
      "",
    ]
  hp = r.get("hard_positive_set")
  if hp:
    lines += (
      [
        f"## Adversarial / hard-positive set ({hp['rows']} images from other networks)",
        "",
        f"Accuracy {_f(hp.get('accuracy'))} (error {_f(hp.get('error'))}) on `{hp['path']}`.",
        "",
        "| type | accuracy |",
        "|---|---|",
      ]
      + [f"| {t} | {_f(a)} |" for t, a in hp["accuracy_by_type"].items()]
      + [""]
    )
  cor = r.get("corruptions")
  if cor:
    sevs = sorted({s for v in cor["accuracy"].values() for s in v}, key=int)
    lines += [
      f"## Corruption accuracy ({cor['num_examples']} test images)",
      "",
      "| corruption | " + " | ".join(f"s{s}" for s in sevs) + " | mean |",
      "|---|" + "---|" * (len(sevs) + 1),
    ]
    for c, v in cor["accuracy"].items():
      vals = [v.get(s) for s in sevs]
      present = [x for x in vals if not _absent(x)]
      lines.append(
        f"| {c} | "
        + " | ".join(_f(x, ".3f") for x in vals)
        + f" | {_f(sum(present) / len(present) if present else None, '.3f')} |"
      )
    lines += [
      "",
      f"Mean corruption accuracy: {_f(cor.get('mean'))}"
      + (
        f"; mCE relative to {cor.get('baseline')!r}: {_f(cor['mce'], '.3f')}"
        if not _absent(cor.get("mce"))
        else ""
      )
      + ".",
      "",
    ]
  flip = r.get("flip_rate")
  if flip:
    lines += (
      ["## Flip probability (ImageNet-P style)", "", "| perturbation | flip prob. |", "|---|---|"]
      + [f"| {k} | {_f(v)} |" for k, v in flip.items()]
      + [""]
    )
  mc = r.get("masking_checks")
  if mc:
    lines += [
      f"## Gradient-masking checks: {'all passed' if mc['passed'] else 'FLAGGED'}",
      "",
      "| check | result | value | threshold | detail |",
      "|---|---|---|---|---|",
    ]
    lines += [
      f"| {c['name']} | {'pass' if c['passed'] else '**FAIL**'} | "
      f"{_f(c['value'], '.4g')} | {_f(c['threshold'], '.4g')} | "
      f"{_cell(c['detail'])} |"
      for c in mc["checks"]
    ]
    lines.append("")
  for section, title in (("cost", "Cost"), ("train", "Training")):
    t = r.get(section)
    if t:
      lines += [f"## {title}", "", "| quantity | value |", "|---|---|"]
      lines += [f"| {k} | {_cell(v)} |" for k, v in t.items()]
      lines.append("")
  lines.append(f"Evaluation time: {_f(r.get('eval_time_s'), '.1f')} s.")
  lines.append("")
  figs = r.get("figures", [])
  if figs:
    lines += ["## Figures", ""] + [f"![{os.path.basename(f)}]({f})" for f in figs] + [""]
  return "\n".join(lines)
