"""Per-example classification losses and the adaptive clean/adversarial weight."""

import jax
import jax.numpy as jnp
import optax


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Softmax cross-entropy: logits [B, K], int labels [B] or soft targets [B, K] -> [B]."""
  if labels.ndim == logits.ndim:
    return optax.softmax_cross_entropy(logits, labels)
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


def accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Per-example correctness (float 0/1): logits [B, K], labels [B] -> [B]."""
  return (jnp.argmax(logits, -1) == labels).astype(jnp.float32)


def adaptive_alpha(acc_adv, acc_clean, *, default: float = 0.5):
  """alpha = acc_adv / (acc_adv + acc_clean), the weight of the clean loss.

  From the hybrid preprint (2024): L = alpha * L_clean + (1 - alpha) * L_adv with
  both accuracies measured on a validation slice. Since acc_adv <= acc_clean in
  practice, alpha <= 0.5: a model that is not yet robust trains mostly on
  adversarial examples. When both accuracies are 0 the ratio is undefined and
  `default` is returned.

  Args:
    acc_adv: adversarial accuracy in [0, 1] (scalar or array).
    acc_clean: clean accuracy in [0, 1].
    default: the value when acc_adv + acc_clean == 0.

  Returns:
    alpha in [0, 1], same shape as the inputs.
  """
  acc_adv = jnp.asarray(acc_adv, jnp.float32)
  acc_clean = jnp.asarray(acc_clean, jnp.float32)
  total = acc_adv + acc_clean
  return jnp.where(total > 0, acc_adv / jnp.where(total > 0, total, 1.0), default)
