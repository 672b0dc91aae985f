"""The training state: everything a resumed run needs, as one pytree of arrays."""

from typing import Any

import flax
import jax
import jax.numpy as jnp


@flax.struct.dataclass
class TrainState:
  """Params, batch statistics, optimizer state, step, RNG key and recipe state.

  Attributes:
    step: int32 scalar, the number of updates done (also the data position).
    params: model parameters.
    batch_stats: BatchNorm running statistics ({} for models without BN).
    opt_state: optax state.
    key: uint32 [2] PRNG key; the step's key is `fold_in(key, step)`.
    alpha: float32 scalar, weight of the clean loss.
    eps: float32 scalar, the attack budget used at the last step.
    delta: the perturbation free adversarial training carries from batch to batch
      ([B, H, W, C]; a scalar 0 for the other recipes).
  """

  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any
  key: jax.Array
  alpha: jax.Array
  eps: jax.Array
  delta: jax.Array

  def variables(self):
    """The Flax variables dict for `model.apply`."""
    v = {"params": self.params}
    if self.batch_stats:
      v["batch_stats"] = self.batch_stats
    return v


def create_train_state(
  model, tx, key: jax.Array, image_shape, *, alpha: float, eps: float, delta_batch: int = 0
) -> TrainState:
  """Initializes a TrainState for `model` on images of `image_shape` (H, W, C).

  `delta_batch` > 0 allocates the zero perturbation of free adversarial training.
  """
  from advjax.models import init_variables  # pylint: disable=import-outside-toplevel

  init_key, state_key = jax.random.split(key)
  variables = init_variables(model, init_key, image_shape)
  params = variables["params"]
  return TrainState(
    step=jnp.int32(0),
    params=params,
    batch_stats=variables.get("batch_stats", {}),
    opt_state=tx.init(params),
    key=state_key,
    alpha=jnp.float32(alpha),
    eps=jnp.float32(eps),
    # a scalar placeholder otherwise (orbax cannot save zero-size arrays)
    delta=jnp.zeros((delta_batch,) + tuple(image_shape) if delta_batch else (), jnp.float32),
  )
