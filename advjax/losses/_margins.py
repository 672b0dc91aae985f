"""Margin objectives that attacks and adversarial augmentations ascend, per example.

`logits [B, K], labels [B] (, targets [B]) -> [B]`; larger means more adversarial.
"""

import jax
import jax.numpy as jnp


def _other_max(logits, labels):
  """max_{j != label} logits_j, per example."""
  onehot = jax.nn.one_hot(labels, logits.shape[-1], dtype=bool)
  return jnp.max(jnp.where(onehot, -jnp.inf, logits), axis=-1)


def _label_logit(logits, labels):
  return jnp.take_along_axis(logits, labels[:, None], axis=-1)[:, 0]


def cw_margin(logits, labels, targets=None, *, confidence: float = 0.0):
  """Carlini-Wagner margin `max_{j!=y} z_j - z_y`, capped at `confidence` (maximized).

  Untargeted: `min(max_{j!=y} z_j - z_y, kappa)`. Targeted (targets given):
  `min(z_t - max_{j!=t} z_j, kappa)`. Carlini & Wagner 2017, eq. (6) with the
  sign flipped so that larger means more adversarial.
  """
  if targets is not None:
    margin = _label_logit(logits, targets) - _other_max(logits, targets)
  else:
    margin = _other_max(logits, labels) - _label_logit(logits, labels)
  return jnp.minimum(margin, confidence)


def dlr(logits, labels, targets=None):
  """Difference-of-logits-ratio loss of Croce & Hein 2020 (maximized).

  Untargeted: `-(z_y - max_{j!=y} z_j) / (z_pi1 - z_pi3)`. Targeted:
  `-(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2)`, with z_pi sorted descending.
  Needs at least 3 (untargeted) or 4 (targeted) classes.
  """
  srt = jnp.sort(logits, axis=-1)[:, ::-1]
  z_y = _label_logit(logits, labels)
  if targets is None:
    return -(z_y - _other_max(logits, labels)) / (srt[:, 0] - srt[:, 2] + 1e-12)
  z_t = _label_logit(logits, targets)
  return -(z_y - z_t) / (srt[:, 0] - 0.5 * (srt[:, 2] + srt[:, 3]) + 1e-12)
