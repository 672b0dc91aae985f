"""Figures and files of an evaluation report in a folder."""

import os
import shutil
from typing import Dict

import numpy as np

from advjax.eval import _report


def write_evaluation(
  workdir: str, report: Dict, *, training_records=None, replace: bool = False
) -> Dict:
  """Writes figures/*.png, report.json and report.md for a report from `evaluate`.

  Args:
    workdir: the folder to write into.
    report: a report from `evaluate` (with its `_gallery`).
    training_records: metrics.jsonl records for a training-curves figure.
    replace: build the folder beside `workdir` and swap it in whole, replacing an
      earlier one: a crash leaves the earlier folder (or none), never a half-written
      one.

  Returns:
    The JSON report as written.
  """
  if not replace:
    return _write_into(workdir, report, training_records)
  parent, base = os.path.split(os.path.normpath(workdir))
  os.makedirs(parent or ".", exist_ok=True)
  tmp = os.path.join(parent, f".{base}.tmp-{os.getpid()}")
  old = os.path.join(parent, f".{base}.old-{os.getpid()}")
  for stale in (tmp, old):
    shutil.rmtree(stale, ignore_errors=True)
  try:
    written = _write_into(tmp, report, training_records)
    if os.path.exists(workdir):
      os.replace(workdir, old)
    try:
      os.replace(tmp, workdir)
    except OSError:
      if os.path.exists(old):
        os.replace(old, workdir)
      raise
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  shutil.rmtree(old, ignore_errors=True)
  return written


def _write_into(workdir: str, report: Dict, training_records) -> Dict:
  from advjax import metrics, plots  # pylint: disable=import-outside-toplevel

  fig_dir = os.path.join(workdir, "figures")
  os.makedirs(fig_dir, exist_ok=True)
  figs = []

  def save(fig, name):
    figs.append(plots.save_figure(fig, os.path.join(fig_dir, name)))

  if training_records:
    save(plots.training_curves(training_records, report=report), "training_curves.png")
  save(plots.accuracy_vs_eps({report.get("name") or "model": report}), "accuracy_vs_eps.png")
  save(plots.confidence_histograms(report), "confidence.png")
  if report.get("corruptions"):
    save(plots.corruption_bars(report), "corruptions.png")
  gallery = report.get("_gallery") or {}
  strongest = report.get("calibration", {}).get("attack")
  if strongest and gallery.get(strongest) is not None:
    clean, adv, labels, pred_clean, pred_adv = gallery[strongest]
    pas = np.asarray(metrics.pass_score(adv, clean))
    caps = plots.gallery_captions(clean, adv, pass_scores=pas)  # the report's L2
    entry = report["attacks"][strongest]
    budget = "unbounded" if entry.get("eps") is None else f"eps {entry['eps']:g}"
    fig = plots.adversarial_gallery(
      clean,
      adv,
      labels,
      pred_clean,
      pred_adv,
      title=f"{report.get('name', '')}: {entry['label']} at {budget}",
      captions=caps,
    )
    save(fig, "gallery.png")
  report = dict(report, figures=[os.path.relpath(f, workdir) for f in figs])
  return _report.write_report(workdir, report)
