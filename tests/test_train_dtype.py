"""config.dtype: bfloat16 mixed precision in the train step (compute in bf16; parameters,
optimizer state, logits, losses and the attacks' images in float32)."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advjax import attacks, data, models, train
from benchmarks import mixed_precision
from tests._inputs import quick_config


def test_dtype_is_validated_and_old_runs_read_as_float32(tmp_path):
  assert train.validate_config(quick_config()).dtype == "float32"
  with pytest.raises(ValueError, match=r"config\.dtype: unknown value 'float16'"):
    train.validate_config(quick_config(dtype="float16"))
  c = quick_config()
  c.model_kwargs.dtype = "bfloat16"
  with pytest.raises(
    ValueError,
    match=r"config\.model_kwargs\.dtype: set the compute dtype "
    r"with config\.dtype",
  ):
    train.validate_config(c)
  saved = quick_config().to_dict()
  del saved["dtype"]  # a config.json written before the key existed
  with open(tmp_path / "config.json", "w", encoding="utf-8") as f:
    json.dump(saved, f)
  assert train.read_run_config(str(tmp_path)).dtype == "float32"


@pytest.mark.slow
def test_bf16_mnist_hybrid_learns_with_float32_state_and_unquantized_attacks(tmp_path):
  # benchmarks/mixed_precision.py's bf16 row (its table compares it with float32)
  c = mixed_precision.run_config("bfloat16", epochs=6, test_points=500)
  workdir = str(tmp_path / "bf16")
  report = train.train_and_evaluate(c, workdir)
  assert report["clean_accuracy"] >= 0.95, report["clean_accuracy"]

  run, state = train.load_run(workdir)
  assert run.model.dtype == jnp.bfloat16
  for tree in (state.params, state.opt_state):
    dtypes = {
      leaf.dtype
      for leaf in jax.tree_util.tree_leaves(tree)
      if jnp.issubdtype(leaf.dtype, jnp.floating)
    }
    assert dtypes == {jnp.dtype(jnp.float32)}, dtypes

  logits_fn = models.make_logits_fn(run.model, state.variables())
  x, y = data.load_splits("mnist5k", validation_size=500)["test"].get(np.arange(64))
  x, y = jnp.asarray(x), jnp.asarray(y)
  assert logits_fn(x).dtype == jnp.float32
  adv = attacks.pgd(jax.random.PRNGKey(0), logits_fn, x, y, eps=0.1, num_steps=5)
  assert adv.dtype == jnp.float32
  assert float(jnp.max(jnp.abs(adv - x))) <= 0.1 + 1e-6
  assert float(jnp.min(adv)) >= 0.0 and float(jnp.max(adv)) <= 1.0
  # the perturbation is not quantized to bf16: most adversarial pixels that moved are
  # not bf16 numbers
  moved = np.asarray(adv != x)
  on_bf16_grid = np.asarray(adv.astype(jnp.bfloat16).astype(jnp.float32) == adv)
  assert moved.mean() > 0.3 and (on_bf16_grid & moved).sum() < 0.5 * moved.sum()
