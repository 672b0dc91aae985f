"""Training curves and an adversarial gallery."""

from typing import Dict, List, Optional, Sequence

from matplotlib import ticker
from matplotlib.figure import Figure
import numpy as np


def _eps_range(values: Sequence[float]) -> str:
  """ "0.15" for one value, "0.015->0.15" from the first to the last of several."""
  values = [float(v) for v in values]
  if not values:
    return ""
  first, last = values[0], values[-1]
  return f"{last:.3g}" if np.isclose(first, last) else f"{first:.3g}->{last:.3g}"


def training_curves(
  records: List[Dict], *, report: Optional[Dict] = None, title: str = ""
) -> Figure:
  """Four panels over training: the loss (total, clean and adversarial cross-entropy,
  log scale), accuracy (training batches and validation, clean and adversarial), alpha
  (the weight of the clean loss) and the training attack's eps.

  The x axis counts epochs (steps / steps per epoch, known from the validation
  records) with the step count on top; without validation records it counts steps.
  The validation adversarial accuracy is measured at the training eps of its epoch
  (growing during an eps warm-up, and larger than the evaluation eps when training at
  a margin): its label gives that eps, and the eps panel marks it. With `report`, the
  final evaluation's clean and PGD (else the first bounded attack) accuracies are drawn
  at the end of training, labelled with their eps, and the eps panel marks the
  evaluation eps, so the two measurements are not mistaken for one another.

  Args:
    records: metrics.jsonl records; kind "train" has step, loss, loss_clean,
      loss_adv, acc_clean, acc_adv, alpha, eps; kind "val" has step, epoch,
      val_acc_clean, val_acc_adv, eps. Absent values are skipped.
    report: the evaluation report of the same run (optional): its name titles the
      figure, its final accuracies and evaluation eps are marked.
    title: the figure's title (default: "<report's name>: training curves").

  Returns:
    A laid-out Figure (16 x 5 inches, the legends under the panels); write it with `save_figure`.
  """
  train = [r for r in records if r.get("kind") == "train"]
  val = [r for r in records if r.get("kind") == "val"]
  spe = next((r["step"] / r["epoch"] for r in val if r.get("epoch")), None)
  x_of = (lambda step: step / spe) if spe else (lambda step: step)
  fig = Figure(figsize=(16, 5.0))
  axes = fig.subplots(1, 4)

  def plot(ax, recs, key, label, **kw):
    pts = [(x_of(r["step"]), r[key]) for r in recs if r.get(key) is not None]
    if pts:
      ax.plot(*zip(*pts), label=label, **kw)
    return [v for _, v in pts]

  plot(axes[0], train, "loss", "total")
  plot(axes[0], train, "loss_clean", "clean CE")
  plot(axes[0], train, "loss_adv", "adversarial CE")
  axes[0].set_title("training loss (per batch)")
  axes[0].set_yscale("log")
  axes[0].set_ylabel("cross-entropy (log scale)")
  plain = ticker.FuncFormatter(lambda v, _: f"{v:g}")
  axes[0].yaxis.set_major_formatter(plain)
  # minor ticks labelled only when the curve spans at most one decade (else they overlap)
  axes[0].yaxis.set_minor_formatter(
    ticker.LogFormatter(labelOnlyBase=False, minor_thresholds=(1, 0.4))
  )
  axes[0].tick_params(axis="y", which="minor", labelsize=7)
  val_eps = [r["eps"] for r in val if r.get("val_acc_adv") is not None and "eps" in r]
  train_eps = [r["eps"] for r in train if r.get("eps") is not None]
  at = _eps_range(val_eps or train_eps)
  plot(axes[1], train, "acc_clean", "train clean (batch)", alpha=0.5)
  plot(axes[1], train, "acc_adv", "train adversarial (batch, training eps)", alpha=0.5)
  plot(axes[1], val, "val_acc_clean", "validation clean", marker="o", ms=4)
  plot(
    axes[1],
    val,
    "val_acc_adv",
    f"validation adversarial (at training eps{', ' + at if at else ''})",
    marker="o",
    ms=4,
  )
  eval_eps = None
  if report:
    end = x_of(max([r["step"] for r in records if "step" in r], default=0))
    attacks = report.get("attacks") or {}
    chosen = (
      "pgd"
      if "pgd" in attacks
      else next((a for a, v in attacks.items() if v.get("eps") is not None), None)
    )
    if report.get("clean_accuracy") is not None:
      axes[1].plot(
        [end],
        [report["clean_accuracy"]],
        "*",
        ms=11,
        color="C2",
        mec="k",
        label=f"test clean (final evaluation) {report['clean_accuracy']:.3f}",
      )
    if chosen is not None and attacks[chosen].get("eps") is not None:
      entry = attacks[chosen]
      eval_eps = float(entry["eps"])
      axes[1].plot(
        [end],
        [entry["accuracy"]],
        "*",
        ms=11,
        color="C3",
        mec="k",
        label=f"test {entry.get('label', chosen).split(' (')[0]} at "
        f"evaluation eps {eval_eps:g}: {entry['accuracy']:.3f}",
      )
  axes[1].set_title("accuracy")
  axes[1].set_ylim(0, 1.02)
  axes[1].set_ylabel("accuracy")
  plot(axes[2], train, "alpha", "alpha")
  axes[2].set_title("alpha (weight of clean loss)")
  axes[2].set_ylim(0, 1.05)
  axes[2].set_ylabel("alpha")
  plot(axes[3], train, "eps", "training eps (per step)")
  if val_eps:
    axes[3].plot(
      [x_of(r["step"]) for r in val if r.get("val_acc_adv") is not None and "eps" in r],
      val_eps,
      "o",
      ms=4,
      color="C3",
      label="validation adversarial eps",
    )
  if eval_eps is not None:
    axes[3].axhline(
      eval_eps, color="k", linestyle="--", linewidth=1, label=f"evaluation eps {eval_eps:g}"
    )
  schedule = _eps_range(train_eps[:1] + (val_eps or train_eps)[-1:])
  axes[3].set_title(f"training attack eps{' (' + schedule + ')' if schedule else ''}")
  axes[3].set_ylabel("eps (Linf)")
  axes[3].set_ylim(bottom=0)
  for ax in axes:
    ax.set_xlabel("epoch" if spe else "step")
    ax.grid(alpha=0.3)
    if spe:
      top = ax.secondary_xaxis("top", functions=(lambda e: e * spe, lambda s: s / spe))
      top.tick_params(labelsize=7)
      top.set_xlabel("step", fontsize=7)
    if ax.get_legend_handles_labels()[0] and ax is not axes[2]:
      # Below the panel: inside, the legend would hide the curves' ends.
      ax.legend(
        fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), borderaxespad=0.0, frameon=False
      )
  name = (report or {}).get("name")
  fig.suptitle(title or (f"{name}: training curves" if name else "training curves"), fontsize=10)
  fig.tight_layout()
  return fig


def gallery_captions(
  clean: np.ndarray, adv: np.ndarray, *, pass_scores: Optional[Sequence[float]] = None
) -> List[str]:
  """Captions for `adversarial_gallery`: each pair's PASS (if given) and the L2 norm of
  its perturbation, `metrics.l2_norm` over all pixel values on the [0, 1] scale, the
  number the evaluation report's L2 columns summarize.

  Args:
    clean: clean images [N, H, W, C] in [0, 1].
    adv: their adversarial images [N, H, W, C].
    pass_scores: PASS of each pair [N] (`metrics.pass_score(adv, clean)`), or None.

  Returns:
    N strings, "PASS 0.880\nL2 1.99" (the Linf norm is the perturbation row's title).
  """
  from advjax import metrics  # pylint: disable=import-outside-toplevel

  l2 = np.asarray(metrics.l2_norm(np.asarray(adv, np.float32), np.asarray(clean, np.float32)))
  if pass_scores is None:
    return [f"L2 {a:.2f}" for a in l2]
  return [f"PASS {p:.3f}\nL2 {a:.2f}" for p, a in zip(np.asarray(pass_scores), l2)]


def adversarial_gallery(
  clean: np.ndarray,
  adv: np.ndarray,
  labels: Sequence[int],
  pred_clean: Sequence[int],
  pred_adv: Sequence[int],
  *,
  title: str = "",
  captions: Sequence[str] = (),
) -> Figure:
  """Rows: clean image, signed perturbation, adversarial image; one column per example.

  Successful adversarial examples (right on the clean image, wrong on the attacked one)
  come first, then the failures (in the given order within each group); each column says
  which it is, and the title how many of the shown ones are adversarial. The
  perturbation row shares one diverging colour scale centred on 0 with symmetric limits
  (the mean over channels for colour images), with a colorbar. Captions give the true
  label and the predictions, the perturbation row its Linf norm; `captions[i]`, if
  given, is added under adversarial image i (`gallery_captions`: PASS and the L2 norm
  that the report summarizes).

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
  deltas = (adv - clean).mean(axis=-1)  # [n, H, W]; the channel itself when C == 1
  limit = max(float(np.abs(deltas).max()), 1e-8) if n else 1e-8
  mappable = None
  for col, i in enumerate(order):
    axes[0, col].imshow(show(clean[i]), cmap=cmap, vmin=0, vmax=1)
    axes[0, col].set_title(f"y={labels[i]} pred={pred_clean[i]}", fontsize=7)
    mappable = axes[1, col].imshow(deltas[i], cmap="RdBu_r", vmin=-limit, vmax=limit)
    axes[1, col].set_title(f"Linf {float(np.abs(adv[i] - clean[i]).max()):.3f}", fontsize=7)
    axes[2, col].imshow(show(adv[i]), cmap=cmap, vmin=0, vmax=1)
    status = (
      "attack succeeded"
      if succeeded[i]
      else "failed (clean wrong)"
      if pred_clean[i] != labels[i]
      else "attack failed"
    )
    extra = f"\n{captions[i]}" if i < len(captions) else ""
    axes[2, col].set_xlabel(
      f"adv pred={pred_adv[i]}\n{status}{extra}",
      fontsize=7,
      color="red" if succeeded[i] else "black",
    )
    for r in range(3):
      axes[r, col].set_xticks([])
      axes[r, col].set_yticks([])
      for spine in axes[r, col].spines.values():
        spine.set_visible(False)
  for r, name in enumerate(
    ["clean", "perturbation" + (" (channel mean)" if clean.shape[-1] > 1 else ""), "adversarial"]
  ):
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
