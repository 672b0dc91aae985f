"""Training curves and an adversarial gallery."""
from typing import Dict, List, Sequence

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np


def _save(fig, path, dpi: int = 110):
  """Lays out, writes a PNG and closes the figure (shared by every plot module)."""
  fig.tight_layout()
  fig.savefig(path, dpi=dpi)
  plt.close(fig)


def training_curves(records: List[Dict], path: str) -> str:
  """Loss, clean/adversarial accuracy, alpha and eps over training steps.

  Args:
    records: metrics.jsonl records; kind "train" has step, loss, loss_clean,
      loss_adv, acc_clean, acc_adv, alpha, eps; kind "val" has step, val_acc_clean,
      val_acc_adv.
    path: PNG path.
  """
  train = [r for r in records if r.get("kind") == "train"]
  val = [r for r in records if r.get("kind") == "val"]
  fig, axes = plt.subplots(1, 4, figsize=(16, 3.4))
  def plot(ax, recs, key, label, **kw):
    pts = [(r["step"], r[key]) for r in recs if r.get(key) is not None]
    if pts:
      ax.plot(*zip(*pts), label=label, **kw)
  plot(axes[0], train, "loss", "total")
  plot(axes[0], train, "loss_clean", "clean CE")
  plot(axes[0], train, "loss_adv", "adversarial CE")
  axes[0].set_title("training loss"); axes[0].set_yscale("log")
  plot(axes[1], train, "acc_clean", "train clean", alpha=0.5)
  plot(axes[1], train, "acc_adv", "train adversarial", alpha=0.5)
  plot(axes[1], val, "val_acc_clean", "validation clean", marker="o")
  plot(axes[1], val, "val_acc_adv", "validation adversarial", marker="o")
  axes[1].set_title("accuracy"); axes[1].set_ylim(0, 1)
  plot(axes[2], train, "alpha", "alpha")
  axes[2].set_title("alpha (weight of clean loss)"); axes[2].set_ylim(0, 1.05)
  plot(axes[3], train, "eps", "eps")
  axes[3].set_title("attack eps")
  for ax in axes:
    ax.set_xlabel("step")
    if ax.get_legend_handles_labels()[0] and ax in axes[:2]:
      ax.legend(fontsize=7)
  _save(fig, path)
  return path


def adversarial_gallery(clean: np.ndarray, adv: np.ndarray, labels: Sequence[int],
                        pred_clean: Sequence[int], pred_adv: Sequence[int], path: str,
                        title: str = "", captions: Sequence[str] = ()) -> str:
  """Rows: clean image, perturbation (rescaled to [0, 1]), adversarial image.

  Captions give the true label and the predictions on clean and adversarial inputs;
  `captions[i]`, if given, is added under adversarial image i (e.g. PASS, L2, Linf).
  """
  n = len(clean)
  fig, axes = plt.subplots(3, n, figsize=(1.6 * n, 5.2), squeeze=False)
  cmap = "gray" if clean.shape[-1] == 1 else None
  show = lambda im: im[..., 0] if im.shape[-1] == 1 else im
  for i in range(n):
    delta = adv[i] - clean[i]
    scale = max(float(np.abs(delta).max()), 1e-8)
    axes[0, i].imshow(show(clean[i]), cmap=cmap, vmin=0, vmax=1)
    axes[0, i].set_title(f"y={labels[i]} pred={pred_clean[i]}", fontsize=7)
    axes[1, i].imshow(show(0.5 + 0.5 * delta / scale), cmap=cmap, vmin=0, vmax=1)
    axes[1, i].set_title(f"|d|inf={scale:.3f}", fontsize=7)
    axes[2, i].imshow(show(adv[i]), cmap=cmap, vmin=0, vmax=1)
    extra = f"\n{captions[i]}" if i < len(captions) else ""
    axes[2, i].set_title(f"adv pred={pred_adv[i]}{extra}", fontsize=7,
                         color="red" if pred_adv[i] != labels[i] else "black")
    for r in range(3):
      axes[r, i].axis("off")
  for r, name in enumerate(["clean", "perturbation", "adversarial"]):
    axes[r, 0].text(-4, 14, name, rotation=90, ha="right", va="center", fontsize=8)
  if title:
    fig.suptitle(title, fontsize=9)
  _save(fig, path)
  return path
