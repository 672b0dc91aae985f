"""Training curves and an adversarial gallery."""
from typing import Dict, List, Sequence

from matplotlib.figure import Figure
import numpy as np


def training_curves(records: List[Dict]) -> Figure:
  """Four panels over training steps: the loss (total, clean and adversarial
  cross-entropy, log scale), accuracy (training batches and validation, clean and
  adversarial), alpha (the weight of the clean loss) and the attack's eps.

  Args:
    records: metrics.jsonl records; kind "train" has step, loss, loss_clean,
      loss_adv, acc_clean, acc_adv, alpha, eps; kind "val" has step, val_acc_clean,
      val_acc_adv. Absent values are skipped.

  Returns:
    A laid-out Figure (16 x 3.4 inches); write it with `save_figure`.
  """
  train = [r for r in records if r.get("kind") == "train"]
  val = [r for r in records if r.get("kind") == "val"]
  fig = Figure(figsize=(16, 3.4))
  axes = fig.subplots(1, 4)
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
  fig.tight_layout()
  return fig


def adversarial_gallery(clean: np.ndarray, adv: np.ndarray, labels: Sequence[int],
                        pred_clean: Sequence[int], pred_adv: Sequence[int], *,
                        title: str = "", captions: Sequence[str] = ()) -> Figure:
  """Rows: clean image, signed perturbation, adversarial image; one column per example.

  Successful adversarial examples (right on the clean image, wrong on the attacked one)
  come first, then the failures (in the given order within each group); each column says
  which it is, and the title how many of the shown ones are adversarial. The
  perturbation row shares one diverging colour scale centred on 0 with symmetric limits
  (the mean over channels for colour images), with a colorbar. Captions give the true
  label and the predictions; `captions[i]`, if given, is added under adversarial image i
  (e.g. PASS, L2, Linf).

  Args:
    clean: clean images [N, H, W, C] in [0, 1].
    adv: their adversarial images [N, H, W, C].
    labels: true labels [N].
    pred_clean: predictions on `clean` [N].
    pred_adv: predictions on `adv` [N].
    title: the figure's title, before the count of adversarial examples.
    captions: extra text under each adversarial image, in the given order.

  Returns:
    A laid-out Figure (1.6 inches per example plus 1 for the colorbar, 5.8 high);
    write it with `save_figure`.
  """
  labels, pred_clean, pred_adv = (np.asarray(v) for v in (labels, pred_clean, pred_adv))
  clean, adv = np.asarray(clean), np.asarray(adv)
  succeeded = (pred_clean == labels) & (pred_adv != labels)
  order = np.argsort(~succeeded, kind="stable")
  n = len(clean)
  fig = Figure(figsize=(1.6 * n + 1.0, 5.8))
  axes = fig.subplots(3, n, squeeze=False)
  cmap = "gray" if clean.shape[-1] == 1 else None
  show = lambda im: im[..., 0] if im.shape[-1] == 1 else im
  deltas = (adv - clean).mean(axis=-1)   # [n, H, W]; the channel itself when C == 1
  limit = max(float(np.abs(deltas).max()), 1e-8) if n else 1e-8
  mappable = None
  for col, i in enumerate(order):
    axes[0, col].imshow(show(clean[i]), cmap=cmap, vmin=0, vmax=1)
    axes[0, col].set_title(f"y={labels[i]} pred={pred_clean[i]}", fontsize=7)
    mappable = axes[1, col].imshow(deltas[i], cmap="RdBu_r", vmin=-limit, vmax=limit)
    axes[1, col].set_title(f"|d|inf={float(np.abs(adv[i] - clean[i]).max()):.3f}",
                           fontsize=7)
    axes[2, col].imshow(show(adv[i]), cmap=cmap, vmin=0, vmax=1)
    status = ("attack succeeded" if succeeded[i] else
              "failed (clean wrong)" if pred_clean[i] != labels[i] else "attack failed")
    extra = f"\n{captions[i]}" if i < len(captions) else ""
    axes[2, col].set_xlabel(f"adv pred={pred_adv[i]}\n{status}{extra}", fontsize=7,
                            color="red" if succeeded[i] else "black")
    for r in range(3):
      axes[r, col].set_xticks([]); axes[r, col].set_yticks([])
      for spine in axes[r, col].spines.values():
        spine.set_visible(False)
  for r, name in enumerate(["clean", "perturbation" + (" (channel mean)" if
                                                      clean.shape[-1] > 1 else ""),
                            "adversarial"]):
    axes[r, 0].set_ylabel(name, fontsize=8)
  width = fig.get_size_inches()[0]
  fig.tight_layout(rect=(0, 0, 1 - 1.0 / width, 0.95))  # 1 inch on the right: colorbar
  if mappable is not None:
    row = axes[1, -1].get_position()
    cax = fig.add_axes((1 - 0.85 / width, row.y0, 0.12 / width, row.height))
    bar = fig.colorbar(mappable, cax=cax)
    bar.ax.tick_params(labelsize=7)
    bar.set_label("adv - clean", fontsize=7)
  count = f"{int(succeeded.sum())} of {n} shown are adversarial"
  fig.suptitle(f"{title}: {count}" if title else count, fontsize=9)
  return fig
