"""MaxUp (Gong et al. 2020): the worst of m augmented copies, per example.

MaxUp trains on the largest per-example loss over m independent draws of an
augmentation. In advjax the draws are any view source of the train step
(`train.make_train_step(..., maxup=m)`: augmentations, attacks, hard positives,
PASS-filtered views), and this module holds the choice they share: the index of the
worst copy, taken without gradient, so the gradient flows only through that copy.
In your own training code: compute the per-example losses of the m copies as
[m, B], then `jnp.take_along_axis(losses, maxup_worst_copy(losses)[None], 0)[0]`.

Reference: C. Gong, T. Ren, M. Ye, Q. Liu, "MaxUp: A Simple Way to Improve
Generalization of Neural Network Training", CVPR 2021,
https://arxiv.org/abs/2002.09024.
"""

import jax
import jax.numpy as jnp


def worst_copy(losses: jax.Array) -> jax.Array:
  """[B] index of the largest of `losses` [m, B] per column (first on ties), without
  gradient: MaxUp's choice of copy per example.

  Example:
    >>> losses = jnp.asarray([[0.1, 2.0], [0.5, 1.0]])   # 2 copies of 2 examples
    >>> worst_copy(losses)
    Array([1, 0], dtype=int32)
  """
  return jax.lax.stop_gradient(jnp.argmax(losses, axis=0))
