"""The robust-training losses of TRADES and MART, per example.

`logits_clean [B, K], logits_adv [B, K] (, labels [B]) -> [B]`; the caller reduces
(the reference code averages over the batch). Gradients flow through both
arguments, as in the reference code (nothing is detached).
"""

import jax
import jax.numpy as jnp

from advjax.losses import _classification


def _check_pair(logits_clean, logits_adv):
  if jnp.ndim(logits_clean) != 2 or jnp.shape(logits_clean) != jnp.shape(logits_adv):
    raise ValueError(
      "`logits_clean` and `logits_adv` must have the same shape [batch, "
      f"classes]; got {jnp.shape(logits_clean)} and {jnp.shape(logits_adv)}."
    )


def trades_kl(logits_clean: jax.Array, logits_adv: jax.Array) -> jax.Array:
  """KL(p(x) || p(x')) summed over the classes, per example: TRADES' robust term.

  `sum_k p_k(x) (log p_k(x) - log p_k(x'))` with p the softmax. TRADES trains on
  `CE(f(x), y) + beta * KL(p(x) || p(x'))` (beta 6; the reference's
  `KLDivLoss(size_average=False) / batch_size` is the batch mean of this), and its
  attack (`attacks.trades_attack`) maximizes this value over x'.

  References: Zhang et al. 2019, "Theoretically Principled Trade-off between
  Robustness and Accuracy", eq. (5), https://arxiv.org/abs/1901.08573.

  Args:
    logits_clean: [B, K] logits of the clean images x.
    logits_adv: [B, K] logits of the adversarial images x'.

  Returns:
    [B] non-negative divergences.

  Raises:
    ValueError: if the shapes differ or are not [B, K].
  """
  _check_pair(logits_clean, logits_adv)
  logp = jax.nn.log_softmax(logits_clean, axis=-1)
  return jnp.sum(jnp.exp(logp) * (logp - jax.nn.log_softmax(logits_adv, axis=-1)), axis=-1)


def mart_loss(
  logits_clean: jax.Array, logits_adv: jax.Array, labels: jax.Array, *, lam: float = 6.0
) -> jax.Array:
  """The MART loss per example: BCE(p(x'), y) + lam * KL(p(x) || p(x')) * (1 - p_y(x)).

  BCE(p(x'), y) = -log p_y(x') - log(1.0001 - max_{k != y} p_k(x') + 1e-12), and
  KL(p(x) || p(x')) = sum_k p_k(x) (log p_k(x) - log(p_k(x') + 1e-12)), weighted
  by (1.0000001 - p_y(x)): the constants are the reference code's (`mart.py`),
  which keep the logs finite when a probability reaches 1 or 0.

  References: Wang et al. 2020, "Improving Adversarial Robustness Requires
  Revisiting Misclassified Examples", eq. (9), https://openreview.net/forum?id=rklOg6EFwS.

  Args:
    logits_clean: [B, K] logits of the clean images x (training mode).
    logits_adv: [B, K] logits of the adversarial images x' (PGD on the CE).
    labels: [B] int true labels.
    lam: weight of the KL term (lambda; 6 in the paper).

  Returns:
    [B] losses.

  Raises:
    ValueError: for mismatched shapes.
  """
  _check_pair(logits_clean, logits_adv)
  if jnp.shape(labels) != jnp.shape(logits_clean)[:1]:
    raise ValueError(
      f"`labels` must be int labels [batch] = {jnp.shape(logits_clean)[:1]}; "
      f"got shape {jnp.shape(labels)}."
    )
  p_adv = jax.nn.softmax(logits_adv, axis=-1)
  onehot = jax.nn.one_hot(labels, logits_adv.shape[-1], dtype=bool)
  # the reference takes the top-2 of p(x') and keeps the one that is not y
  p_other = jnp.max(jnp.where(onehot, -jnp.inf, p_adv), axis=-1)
  bce = _classification.cross_entropy(logits_adv, labels) - jnp.log(1.0001 - p_other + 1e-12)
  logp_clean = jax.nn.log_softmax(logits_clean, axis=-1)
  p_clean = jnp.exp(logp_clean)
  kl = jnp.sum(p_clean * (logp_clean - jnp.log(p_adv + 1e-12)), axis=-1)
  p_true = jnp.sum(jnp.where(onehot, p_clean, 0.0), axis=-1)
  return bce + lam * kl * (1.0000001 - p_true)
