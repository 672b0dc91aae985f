"""Figures 2 and 4 of Rozsa, Rudd & Boult 2016 (PASS and hard positives)."""

import functools
from typing import Dict, Optional, Sequence

import jax
import jax.numpy as jnp
import matplotlib
from matplotlib.figure import Figure
import numpy as np

from advjax import attacks


def _gray(ax, img, vmin=0.0, vmax=1.0, cmap="gray"):
  img = np.asarray(img)
  ax.imshow(
    img[..., 0] if img.shape[-1] == 1 else np.clip(img, 0, 1),
    cmap=cmap,
    vmin=vmin,
    vmax=vmax,
    interpolation="nearest",
  )
  ax.set_xticks([])
  ax.set_yticks([])


def perturbation_examples(
  logits_fn, images, labels, *, num_binary_steps: int = 10
) -> Dict[str, attacks.MinimalAdversarial]:
  """Minimal adversarials along FGS, FGV, HC-1 and HC-2 (HC-D) directions.

  Args:
    logits_fn: `images [N, H, W, C] -> logits [N, K]`.
    images: float images [N, H, W, C] in [0, 1], correctly classified.
    labels: int labels [N].
    num_binary_steps: bisections of the line search.

  Returns:
    {"FGS", "FGV", "HC-1", "HC-2"} -> `MinimalAdversarial` with D = 1.
  """
  images, labels = jnp.asarray(images, jnp.float32), jnp.asarray(labels)
  hc, _ = attacks.hot_cold_directions(logits_fn, images, labels, num_hot=2)
  dirs = {
    "FGS": attacks.fgs_directions(logits_fn, images, labels),
    "FGV": attacks.fgv_directions(logits_fn, images, labels),
    "HC-1": hc[:, :1],
    "HC-2": hc[:, 1:2],
  }
  search = jax.jit(
    functools.partial(attacks.minimal_adversarial, logits_fn, num_binary_steps=num_binary_steps)
  )
  return {k: search(images, labels, d) for k, d in dirs.items()}


def pass_examples_figure(
  logits_fn, images, labels, *, results: Optional[Dict[str, attacks.MinimalAdversarial]] = None
) -> Figure:
  """Figure 2 of Rozsa et al. 2016: original, perturbation and adversarial per type.

  One block of rows per image; in each block, one row per generation type (FGS,
  FGV, HC-1, HC-2) with the original, the perturbation (gray = 0, scaled to its
  own range) and the minimal adversarial, captioned with PASS, the L2 norm per
  pixel, the Linf norm and the predicted class.

  Args:
    logits_fn: `images [N, H, W, C] -> logits [N, K]`.
    images: float images [N, H, W, C] in [0, 1] (a few, e.g. 2 MNIST digits).
    labels: int labels [N].
    results: precomputed `perturbation_examples(logits_fn, images, labels)`.

  Returns:
    A laid-out Figure (5.4 inches wide, 1.9 high per row); write it with `save_figure`.
  """
  results = results or perturbation_examples(logits_fn, images, labels)
  images = np.asarray(images)
  types = list(results)
  n = images.shape[0]
  fig = Figure(figsize=(5.4, 1.9 * n * len(types)))
  axes = fig.subplots(n * len(types), 3, squeeze=False)
  for i in range(n):
    for t, name in enumerate(types):
      r = results[name]
      row = axes[i * len(types) + t]
      adv = np.asarray(r.images[i, 0])
      pert = adv - images[i]
      m = max(float(np.abs(pert).max()), 1e-6)
      _gray(row[0], images[i])
      row[0].set_title(f"original (label {int(labels[i])})", fontsize=7)
      _gray(row[1], pert, -m, m, cmap="RdBu_r")
      row[1].set_title(f"{name} perturbation (+-{m:.2f})", fontsize=7)
      _gray(row[2], adv)
      if bool(r.success[i, 0]):
        row[2].set_title(
          f"{name}: PASS {float(r.pass_score[i, 0]):.3f}, pred "
          f"{int(r.predictions[i, 0])}\nL2/px {float(r.l2[i, 0]):.2e}, "
          f"Linf {float(r.linf[i, 0]):.3f}",
          fontsize=7,
        )
      else:
        row[2].set_title(f"{name}: label never flips", fontsize=7)
  fig.suptitle("Minimal adversarial images (Rozsa et al. 2016, Fig. 2)", fontsize=9)
  fig.tight_layout()
  return fig


def pass_distribution_figure(
  columns: Dict[str, np.ndarray],
  *,
  types: Optional[Sequence[str]] = None,
  tau: Optional[float] = None,
) -> Figure:
  """Figure 4 of Rozsa et al. 2016: PASS distribution per generation type.

  One box (quartiles and whiskers, no outliers) per (type, scale factor), coloured by
  the factor, with the PASS threshold as a dashed line if `tau` is given.

  Args:
    columns: a set from `attacks.generate_hard_positive_set` (columns "type",
      "factor", "pass_score").
    types: the types to show, in order (default: all, sorted; HC-*-k by k).
    tau: draw the PASS threshold as a line.

  Returns:
    A laid-out Figure (0.45 inch per box, at least 4, x 3.2); write it with
    `save_figure`.
  """
  kinds = np.asarray(columns["type"])
  factors = np.round(np.asarray(columns["factor"], np.float64), 3)
  ps = np.asarray(columns["pass_score"])
  if types is None:
    key = lambda s: (s.rsplit("-", 1)[0], int(s.rsplit("-", 1)[1]) if s[:2] == "HC" else 0)
    types = sorted(set(kinds.tolist()), key=key)
  uniq = sorted(set(factors.tolist()))
  data, labels, colors = [], [], []
  palette = matplotlib.colormaps["tab10"]
  for t in types:
    for j, f in enumerate(uniq):
      sel = ps[(kinds == t) & (factors == f)]
      if sel.size:
        data.append(sel)
        labels.append(f"{t}" + ("" if f == 1.0 else f"-{f:g}"))
        colors.append(palette(j))
  fig = Figure(figsize=(max(4.0, 0.45 * len(data) + 1.5), 3.2))
  ax = fig.subplots()
  if data:
    box = ax.boxplot(data, patch_artist=True, showfliers=False)
    for patch, c in zip(box["boxes"], colors):
      patch.set_facecolor(c)
      patch.set_alpha(0.6)
    ax.set_xticks(range(1, len(labels) + 1))
    ax.set_xticklabels(labels, rotation=60, fontsize=7)
  if tau is not None:
    ax.axhline(tau, color="k", ls="--", lw=0.8, label=f"tau = {tau:g}")
    ax.legend(fontsize=7)
  ax.set_ylabel("PASS")
  ax.set_title("PASS per generation type (Rozsa et al. 2016, Fig. 4)", fontsize=9)
  fig.tight_layout()
  return fig
