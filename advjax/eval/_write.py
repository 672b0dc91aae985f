"""Figures and files of an evaluation report in a workdir."""
import os
from typing import Dict, Optional

import numpy as np

from advjax.eval import _report


def write_evaluation(workdir: str, report: Dict, *, training_records=None) -> Dict:
  """Writes figures/*.png, report.json and report.md for a report from `evaluate`.

  Returns:
    The JSON report as written.
  """
  from advjax import metrics, plots  # pylint: disable=import-outside-toplevel
  fig_dir = os.path.join(workdir, "figures")
  os.makedirs(fig_dir, exist_ok=True)
  figs = []
  if training_records:
    figs.append(plots.training_curves(training_records,
                                      os.path.join(fig_dir, "training_curves.png")))
  figs.append(plots.accuracy_vs_eps({report.get("name") or "model": report},
                                    os.path.join(fig_dir, "accuracy_vs_eps.png")))
  figs.append(plots.confidence_histograms(report, os.path.join(fig_dir, "confidence.png")))
  if report.get("corruptions"):
    figs.append(plots.corruption_bars(report, os.path.join(fig_dir, "corruptions.png")))
  gallery = report.get("_gallery") or {}
  strongest = report.get("calibration", {}).get("attack")
  if strongest and gallery.get(strongest) is not None:
    clean, adv, labels, pred_clean, pred_adv = gallery[strongest]
    pas = np.asarray(metrics.pass_score(adv, clean))
    l2 = np.asarray(metrics.l2_per_pixel(adv, clean))
    linf = np.asarray(metrics.linf_norm(adv, clean))
    caps = [f"PASS {p:.3f} L2/px {a:.4f}\nLinf {b:.3f}" for p, a, b in zip(pas, l2, linf)]
    eps = report["attacks"][strongest]["eps"]
    figs.append(plots.adversarial_gallery(
        clean, adv, labels, pred_clean, pred_adv, os.path.join(fig_dir, "gallery.png"),
        title=f"{report.get('name', '')}: {report['attacks'][strongest]['label']} at eps "
              f"{eps:g}", captions=caps))
  report = dict(report, figures=[os.path.relpath(f, workdir) for f in figs])
  return _report.write_report(workdir, report)
