"""`fit`: a few lines to train a model in memory (notebooks, tests, benchmarks)."""

from typing import Optional

import jax
import optax

from advjax import data
from advjax.train import _schedules
from advjax.train import _step
from advjax.train._state import create_train_state


def fit(
  model,
  dataset,
  *,
  epochs: int,
  batch_size: int = 64,
  learning_rate: float = 3e-3,
  seed: int = 0,
  recipe: str = "standard",
  attack: str = "pgd(num_steps=7)",
  eps: float = 0.1,
  alpha: float = 0.5,
  optimizer: Optional[optax.GradientTransformation] = None,
):
  """Trains `model` on an in-memory dataset with the library's train step; no files.

  Args:
    model: a Flax module (e.g. `models.get_model("lenet5", num_classes=10)`).
    dataset: an `ArrayDataset` (e.g. `data.load_mnist5k()["train"]`).
    epochs: passes over the data.
    batch_size, learning_rate, seed: Adam with a constant learning rate by default.
    recipe: "standard", "adversarial" (fixed `alpha`) or "hybrid" (treated as adversarial
      with fixed `alpha` here; the adaptive weight needs the full loop).
    attack, eps: the training attack of adversarial recipes, a registered attack with
      its options (`attacks.build_attack`), and its budget.
    optimizer: an optax optimizer to use instead of Adam.

  Returns:
    The trained variables ({"params", maybe "batch_stats"}).
  """
  tx = optimizer or optax.adam(learning_rate)
  state = create_train_state(
    model,
    tx,
    jax.random.PRNGKey(seed),
    dataset.image_shape,
    alpha=1.0 if recipe == "standard" else alpha,
    eps=eps,
  )
  step = _step.make_train_step(
    model,
    tx,
    recipe="adversarial" if recipe == "hybrid" else recipe,
    attack_fn=None if recipe == "standard" else _step.make_attack_fn(attack),
    eps_fn=_schedules.eps_schedule("constant", eps if recipe != "standard" else 0.0, 0),
  )
  total = epochs * data.steps_per_epoch(len(dataset), batch_size)
  for _, batch in data.iterate_train(dataset, batch_size, seed, 0, total):
    state, _ = step(state, batch)
  return jax.device_get(state.variables())
