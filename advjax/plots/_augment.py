"""Grids of every augmentation and of every corruption."""

import functools
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
from matplotlib.figure import Figure
import numpy as np

from advjax import augment


def _show(ax, img, title=None, fontsize=7):
  img = np.clip(np.asarray(img), 0, 1)
  if img.shape[-1] == 1:
    ax.imshow(img[..., 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
  else:
    ax.imshow(img, interpolation="nearest")
  ax.set_xticks([])
  ax.set_yticks([])
  if title:
    ax.set_title(title, fontsize=fontsize)


def augmentation_examples(key, images):
  """Every augmentation applied to `images`: the columns of `augmentation_grid`.

  The batch-level ones (mixup, CutMix) mix the given images among themselves;
  the noise column is NoisyMix noise at the input (clipped for display).

  Args:
    key: JAX RNG key.
    images: [N, H, W, C] float images in [0, 1].

  Returns:
    {column title: augmented images [N, H, W, C]}, the original first.
  """
  images = jnp.asarray(images, jnp.float32)
  n = images.shape[0]
  keys = lambda i: jax.random.split(jax.random.fold_in(key, i), n)
  batched = lambda fn: jax.jit(jax.vmap(fn))  # one compile per column
  out = {"original": images}
  for i, policy in enumerate(["color", "translation", "cutout", "color,translation,cutout"]):
    fn = functools.partial(augment.diffaugment, policy=policy)
    out[f"DiffAugment\n{policy.replace(',translation,cutout', '+all')}"] = batched(fn)(
      keys(i), images
    )
  out["AugMix"] = batched(augment.augmix)(keys(10), images)
  out["AugMix\nall ops"] = batched(functools.partial(augment.augmix, all_ops=True))(
    keys(11), images
  )
  for j, name in enumerate(augment.augmix_op_names(all_ops=True)):
    op = functools.partial(augment.augmix_op, name=name, severity=10.0)
    out[f"op: {name}\n(severity 10)"] = batched(op)(keys(20 + j), images)
  out["random colour\nfilter (ACE)"] = batched(
    functools.partial(augment.random_color_filter, bounds=(0.2, 3.0))
  )(keys(40), images)
  if n > 1:
    labels = jnp.arange(n)
    out["mixup"] = augment.mixup_batch(jax.random.fold_in(key, 41), images, labels, num_classes=n)[
      0
    ]
    out["CutMix"] = augment.cutmix_batch(
      jax.random.fold_in(key, 42), images, labels, num_classes=n
    )[0]
  out["NoisyMix noise\n(input)"] = jnp.clip(
    augment.sparse_noise(jax.random.fold_in(key, 43), images), 0, 1
  )
  return out


def augmentation_grid(images, *, key: Optional[jax.Array] = None, title: str = "") -> Figure:
  """A grid of every augmentation: one row per image, one column per augmentation
  (`augmentation_examples`: the original, DiffAugment policies, AugMix, each AugMix op
  at severity 10, ACE's random colour filter, mixup, CutMix, NoisyMix noise).

  Args:
    images: [N, H, W, C] float images in [0, 1] (a few, e.g. 4).
    key: JAX RNG key (default key(0)).
    title: figure title.

  Returns:
    A laid-out Figure (1.15 inches per column, 1.25 per row); write it with
    `save_figure` (dpi 100 is plenty).
  """
  key = jax.random.key(0) if key is None else key
  cols = augmentation_examples(key, images)
  n = np.shape(images)[0]
  fig = Figure(figsize=(1.15 * len(cols), 1.25 * n + 0.6))
  axes = fig.subplots(n, len(cols), squeeze=False)
  for c, (name, imgs) in enumerate(cols.items()):
    for r in range(n):
      _show(axes[r, c], imgs[r], name if r == 0 else None, fontsize=6)
  if title:
    fig.suptitle(title)
  fig.tight_layout()
  return fig


def corruption_grid(
  image,
  *,
  key: Optional[jax.Array] = None,
  names: Optional[Sequence[str]] = None,
  severities: Sequence[int] = (1, 3, 5),
  title: str = "",
) -> Figure:
  """A grid of corruptions of one image: per corruption, the original and the
  corrupted image at each severity, in two blocks side by side.

  Args:
    image: one [H, W, C] float image in [0, 1].
    key: JAX RNG key (default key(0)).
    names: corruptions (default all 19 of `corruption_names("all")`).
    severities: columns.
    title: figure title.

  Returns:
    A laid-out Figure; write it with `save_figure` (dpi 100 is plenty).
  """
  key = jax.random.key(0) if key is None else key
  names = augment.corruption_names("all") if names is None else list(names)
  image = jnp.asarray(image, jnp.float32)
  cols = len(severities) + 1
  # Laid out in two blocks side by side to keep the figure compact.
  half = (len(names) + 1) // 2
  fig = Figure(figsize=(2 * cols * 1.25, half * 1.45 + 0.5))
  axes = fig.subplots(half, 2 * cols, squeeze=False)
  for i, name in enumerate(names):
    r, c0 = i % half, (i // half) * cols
    _show(axes[r, c0], image, name)
    for j, s in enumerate(severities):
      # Eager: faster here than compiling one program per (name, severity).
      out = augment.corrupt(jax.random.fold_in(key, i), image, name=name, severity=s)
      _show(axes[r, c0 + 1 + j], out, f"severity {s}")
  for i in range(len(names), 2 * half):
    for c in range(cols):
      axes[i % half, (i // half) * cols + c].axis("off")
  if title:
    fig.suptitle(title)
  fig.tight_layout()
  return fig
