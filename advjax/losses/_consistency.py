"""Jensen-Shannon consistency loss of AugMix / NoisyMix."""

import jax
import jax.numpy as jnp


def jsd_consistency(
  logits_clean: jax.Array, logits_aug1: jax.Array, logits_aug2: jax.Array
) -> jax.Array:
  """Jensen-Shannon divergence among the softmax outputs of three views, per example.

  `JS(p_c, p_1, p_2) = (KL(p_c || M) + KL(p_1 || M) + KL(p_2 || M)) / 3` with
  `M = (p_c + p_1 + p_2) / 3`, as in the AugMix reference (mixture clamped to
  [1e-7, 1] before the log). AugMix and NoisyMix weight it by 12.

  References: Hendrycks et al. 2020, "AugMix", eq. (1),
  https://arxiv.org/abs/1912.02781; Erichson et al. 2022, "NoisyMix".

  Args:
    logits_clean: [B, K] logits of the clean view.
    logits_aug1: [B, K] logits of the first augmented view.
    logits_aug2: [B, K] logits of the second augmented view.

  Returns:
    [B] non-negative divergences (at most log 3); the caller reduces.

  Raises:
    ValueError: if the shapes differ or are not [B, K].
  """
  shapes = {jnp.shape(l) for l in (logits_clean, logits_aug1, logits_aug2)}
  if len(shapes) != 1 or len(next(iter(shapes))) != 2:
    raise ValueError(
      "`logits_clean`, `logits_aug1` and `logits_aug2` must all have the "
      f"same shape [batch, classes]; got {sorted(shapes)}."
    )
  logps = [jax.nn.log_softmax(l, axis=-1) for l in (logits_clean, logits_aug1, logits_aug2)]
  ps = [jnp.exp(lp) for lp in logps]
  log_m = jnp.log(jnp.clip((ps[0] + ps[1] + ps[2]) / 3.0, 1e-7, 1.0))
  kl = [jnp.sum(p * (lp - log_m), axis=-1) for p, lp in zip(ps, logps)]
  return (kl[0] + kl[1] + kl[2]) / 3.0
