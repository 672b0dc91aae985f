"""Dataset-level adversarial / hard-positive set of Rozsa, Rudd & Boult 2016.

`generate_hard_positive_set` runs FGS, FGV and hot/cold (HC-D-k, HC-S-k)
directions over a dataset in batches, finds the minimal adversarial along each,
scales it (1.0 = the minimal adversarial, 1.05 / 1.10 = hard positives) and
keeps the rows with PASS >= tau. The result is a dict of NumPy columns that
`save_hard_positive_set` writes as one .npz.
"""

import functools
import os
import re
from typing import Dict, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from advjax import _files
from advjax import _validate
from advjax.attacks import _hot_cold
from advjax.attacks import _line_search

_TYPE_RE = re.compile(r"^(FGS|FGV|HC-([DS])-([1-9][0-9]*))$")
COLUMNS = (
  "image",
  "label",
  "type",
  "scale",
  "factor",
  "pass_score",
  "l2",
  "linf",
  "predicted",
  "source_index",
)


def parse_type(spec: str) -> Tuple[str, bool, int]:
  """Parses "FGS", "FGV", "HC-D-k" or "HC-S-k" into (kind, use_sign, num_hot).

  Raises:
    ValueError: for an unknown spec.
  """
  m = _TYPE_RE.match(spec)
  if not m:
    raise ValueError(
      f"Unknown generation type {spec!r}; expected 'FGS', 'FGV', "
      f"'HC-D-k' or 'HC-S-k' (k >= 1 hot classes)."
    )
  if m.group(1) in ("FGS", "FGV"):
    return m.group(1), m.group(1) == "FGS", 1
  return "HC", m.group(2) == "S", int(m.group(3))


def type_names(spec: str) -> Sequence[str]:
  """Row type names of a spec: "HC-D-3" -> ["HC-D-1", "HC-D-2", "HC-D-3"]."""
  kind, sign, k = parse_type(spec)
  if kind != "HC":
    return [kind]
  return [f"HC-{'S' if sign else 'D'}-{j}" for j in range(1, k + 1)]


def directions_for(logits_fn, images, labels, spec: str) -> jax.Array:
  """Directions [B, D, H, W, C] of one generation type (see `parse_type`)."""
  kind, sign, k = parse_type(spec)
  if kind == "FGS":
    return _hot_cold.fgs_directions(logits_fn, images, labels)
  if kind == "FGV":
    return _hot_cold.fgv_directions(logits_fn, images, labels)
  return _hot_cold.hot_cold_directions(logits_fn, images, labels, num_hot=k, use_sign=sign)[0]


def _runner(logits_fn, scales, pass_iterations, search_kwargs):
  """One jitted `(images, labels, type) -> HardPositives` for every batch of a call."""

  @functools.partial(jax.jit, static_argnums=2)
  def run(x, y, spec):
    d = directions_for(logits_fn, x, y, spec)
    hp = _line_search.hard_positives(
      logits_fn, x, y, d, scales=scales, pass_iterations=pass_iterations, **search_kwargs
    )
    return hp._replace(minimal=None)

  return run


def generate_hard_positive_set(
  logits_fn,
  images,
  labels,
  *,
  tau: float,
  types: Sequence[str] = ("FGS", "FGV", "HC-D-9"),
  scales: Sequence[float] = (1.0, 1.05, 1.10),
  batch_size: int = 128,
  pass_iterations: int = 50,
  require_misclassified: bool = False,
  **search_kwargs,
) -> Dict[str, np.ndarray]:
  """Adversarial and hard-positive images of a dataset, filtered by PASS >= tau.

  For every image and generation type, the minimal adversarial along each
  direction is found (`minimal_adversarial`), its perturbation is scaled by each
  factor in `scales` (`hard_positives`), and a row is kept when the minimal
  adversarial exists and PASS >= tau (Rozsa, Rudd & Boult 2016, Sec. 3-5). The
  label of every row is the true label of its source image (hard positives are
  training data for it).

  Args:
    logits_fn: `images [N, H, W, C] -> logits [N, K]`.
    images: float images [N, H, W, C] in [0, 1] (NumPy or JAX).
    labels: int labels [N].
    tau: the PASS threshold in [0, 1].
    types: generation types, each "FGS", "FGV", "HC-D-k" or "HC-S-k".
    scales: factors of the minimal perturbation (1.0: minimal adversarial).
    batch_size: images per jitted call.
    pass_iterations: ECC iterations for PASS.
    require_misclassified: also drop rows the model still classifies correctly
      (scaled perturbations of a non-monotone decision can fall back).
    **search_kwargs: passed to `minimal_adversarial` (init_scale, growth, ...).

  Returns:
    A dict of NumPy columns of equal length R: "image" float32 [R, H, W, C] on
    the k/255 grid, "label" int32, "type" str (e.g. "HC-D-3"), "scale" float32
    (the Linf step along the unit-Linf direction), "factor" float32 (1.0, 1.05,
    ...), "pass_score", "l2" (per pixel), "linf" float32, "predicted" int32 and
    "source_index" int64 (row of `images`).

  Raises:
    ValueError: for bad inputs, tau outside [0, 1] or an unknown type.
  """
  if not (isinstance(tau, (int, float, np.floating)) and 0.0 <= float(tau) <= 1.0):
    raise ValueError(f"`tau` must be a number in [0, 1]; got {tau!r}.")
  _validate.check_images(images, "images")
  _validate.check_labels(labels, "labels", batch_size=np.shape(images)[0])
  _validate.check_positive_int(batch_size, "batch_size")
  for spec in types:
    parse_type(spec)
  images = np.asarray(images, np.float32)
  labels = np.asarray(labels, np.int32)

  run = _runner(logits_fn, tuple(float(f) for f in scales), int(pass_iterations), search_kwargs)

  cols = {c: [] for c in COLUMNS}
  n = images.shape[0]
  for start in range(0, n, batch_size):
    x = images[start : start + batch_size]
    y = labels[start : start + batch_size]
    pad = batch_size - x.shape[0]
    if pad:  # one compiled shape for every batch
      x = np.concatenate([x, np.repeat(x[-1:], pad, 0)])
      y = np.concatenate([y, np.repeat(y[-1:], pad, 0)])
    real = np.arange(batch_size) < batch_size - pad
    for spec in types:
      hp = jax.device_get(run(jnp.asarray(x), jnp.asarray(y), spec))
      names = np.asarray(type_names(spec))
      b, nd, ns = hp.valid.shape
      keep = hp.valid & (hp.pass_score >= tau) & real[:, None, None]
      if require_misclassified:
        keep &= hp.misclassified
      bi, di, si = np.nonzero(keep)
      cols["image"].append(hp.images[bi, di, si])
      cols["label"].append(y[bi])
      cols["type"].append(names[di])
      cols["scale"].append(hp.scale[bi, di, si])
      cols["factor"].append(np.asarray(hp.factors)[si])
      cols["pass_score"].append(hp.pass_score[bi, di, si])
      cols["l2"].append(hp.l2[bi, di, si])
      cols["linf"].append(hp.linf[bi, di, si])
      cols["predicted"].append(hp.predictions[bi, di, si])
      cols["source_index"].append(start + bi)
  dtypes = dict(
    image=np.float32,
    label=np.int32,
    type=str,
    scale=np.float32,
    factor=np.float32,
    pass_score=np.float32,
    l2=np.float32,
    linf=np.float32,
    predicted=np.int32,
    source_index=np.int64,
  )
  out = {}
  for c in COLUMNS:
    if cols[c]:
      out[c] = np.concatenate(cols[c]).astype(dtypes[c])
    else:
      out[c] = np.zeros((0,) + (images.shape[1:] if c == "image" else ()), dtypes[c])
  return out


def save_hard_positive_set(path: str, columns: Dict[str, np.ndarray]) -> None:
  """Writes the columns as an .npz atomically (temporary file, then rename)."""
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  _files.atomic_write(path, lambda f: np.savez_compressed(f, **columns))


def load_hard_positive_set(path: str) -> Dict[str, np.ndarray]:
  """Reads a set written by `save_hard_positive_set`."""
  with np.load(path, allow_pickle=False) as f:
    return {k: f[k] for k in f.files}
