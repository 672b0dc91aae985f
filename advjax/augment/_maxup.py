"""MaxUp (Gong et al. 2020): the worst of m augmented copies, per example.

Reference: C. Gong, T. Ren, M. Ye, Q. Liu, "MaxUp: A Simple Way to Improve
Generalization of Neural Network Training", CVPR 2021,
https://arxiv.org/abs/2002.09024.
"""
from typing import Callable

import jax
import jax.numpy as jnp

from advjax import _validate


def maxup_loss(key: jax.Array, loss_fn: Callable[[jax.Array, jax.Array], jax.Array],
               images: jax.Array, labels: jax.Array, *,
               augment_fn: Callable[[jax.Array, jax.Array], jax.Array],
               m: int = 4) -> jax.Array:
  """Batch-level MaxUp loss: per example, the maximum loss over `m` augmented copies.

  Each example is augmented `m` times with independent keys (copy j of example
  i uses `jax.random.split(key, m * B)[j * B + i]`); the loss of every copy is
  computed and the largest is returned. The maximum is taken by index
  (argmax then gather), so the gradient flows only through the worst copy of
  each example (ties go to the first copy).

  Args:
    key: a JAX RNG key.
    loss_fn: `(images [B, H, W, C], labels) -> [B]` per-example loss, e.g.
      `lambda x, y: losses.cross_entropy(model.apply(v, x), y)`.
    images: [B, H, W, C] float images in [0, 1].
    labels: anything `loss_fn` accepts with a leading batch axis (int [B] or
      soft [B, K] targets).
    augment_fn: per-example augmentation `(key, image [H, W, C]) -> image`
      (e.g. `functools.partial(augmix, severity=3)`); it is vmapped here.
    m: number of copies (static, >= 1).

  Returns:
    [B] per-example maximum loss; the caller reduces.

  Raises:
    ValueError: for images that are not [B, H, W, C] floats or m < 1.
  """
  _validate.check_images(images, "images", rank=4)
  _validate.check_positive_int(m, "m")
  b = images.shape[0]
  keys = jax.random.split(key, m * b)
  keys = keys.reshape((m, b) + keys.shape[1:])
  copies = jax.vmap(jax.vmap(augment_fn))(keys, jnp.broadcast_to(images, (m,) + images.shape))
  flat = copies.reshape((m * b,) + images.shape[1:])
  tiled = jax.tree_util.tree_map(lambda l: jnp.concatenate([l] * m, axis=0), labels)
  losses = loss_fn(flat, tiled).reshape(m, b)
  return jnp.take_along_axis(losses, worst_copy(losses)[None], axis=0)[0]


def worst_copy(losses: jax.Array) -> jax.Array:
  """[B] index of the largest of `losses` [m, B] per column (first on ties), without
  gradient: MaxUp's choice, shared with the train step's MaxUp over any view source."""
  return jax.lax.stop_gradient(jnp.argmax(losses, axis=0))
