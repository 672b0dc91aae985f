"""One compiled program serves every model of an architecture and every trace.

A program's identity is its text: JAX's compilation cache (in memory and on disk) finds a
compiled program by it. `models.make_logits_fn` makes the weights inputs of the programs
it is compiled into (through `models.jit_argument`), not constants, and advjax states no
value check under a plain `jax.jit` (a stated check carries a new checkify error code in
every trace), so evaluating several checkpoints, or a new process reading the cache,
compiles nothing again.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advjax import attacks, checked_jit, models


def _lenet(seed):
  model = models.get_model("lenet5", num_classes=10)
  return model, models.init_variables(model, jax.random.key(seed), (28, 28, 1))


def _pgd(f, k, x, y):
  return attacks.pgd(k, f, x, y, eps=0.1, num_steps=3)


def test_one_program_serves_every_model_of_an_architecture():
  x = jax.random.uniform(jax.random.key(0), (4, 28, 28, 1))
  y = jnp.arange(4, dtype=jnp.int32)
  fns = [models.make_logits_fn(*_lenet(seed)) for seed in (0, 1)]
  # the weights are the leaves: inputs of the program, not constants in it
  (_, variables) = _lenet(1)
  leaves, want = jax.tree_util.tree_leaves(fns[1]), jax.tree_util.tree_leaves(variables)
  assert len(leaves) == len(want)
  for a, b in zip(leaves, want):
    np.testing.assert_array_equal(a, b)
  traces = []

  def counted(f, k, x, y):
    traces.append(1)
    return _pgd(f, k, x, y)

  attack = jax.jit(counted)
  texts = [attack.lower(f, jax.random.key(1), x, y).as_text() for f in fns]
  assert texts[0] == texts[1]
  main = next(l for l in texts[0].splitlines() if "func.func public @main(" in l)
  assert "tensor<400x120xf32>" in main  # the first dense layer's weights are an input
  assert not re.search(r"constant dense<[^>]*> : tensor<400x120xf32>", texts[0])
  outs = [attack(f, jax.random.key(1), x, y) for f in fns]
  assert len(traces) == 1  # one trace serves both models, lowered and called
  # the same numbers as the model's weights compiled in as constants
  for f, out in zip(fns, outs):
    closed = jax.jit(lambda k, x, y, f=f: _pgd(lambda z: f(z), k, x, y))
    np.testing.assert_array_equal(out, closed(jax.random.key(1), x, y))
  assert not np.array_equal(outs[0], outs[1])  # two models, two answers


def test_jit_argument_wraps_any_callable_and_keeps_apply_kwargs():
  model, variables = _lenet(0)
  x = jax.random.uniform(jax.random.key(0), (2, 28, 28, 1))
  own = lambda z: model.apply(variables, z, train=False)  # a user's closure
  wrapped = models.jit_argument(own)
  assert jax.tree_util.tree_leaves(wrapped) == []  # its closure is compiled in
  run = jax.jit(lambda f, z: f(z))
  np.testing.assert_array_equal(run(wrapped, x), jax.jit(own)(x))
  np.testing.assert_array_equal(models.jit_with_model(lambda f, z: f(z), own)(x), jax.jit(own)(x))
  made = models.make_logits_fn(model, variables)
  assert models.jit_argument(made) is made
  # arrays among apply_kwargs (rngs) are inputs too; flags stay in the program
  rngs = {"dropout": jax.random.key(2)}
  with_rngs = models.make_logits_fn(model, variables, train=False, rngs=rngs)
  assert len(jax.tree_util.tree_leaves(with_rngs)) == len(jax.tree_util.tree_leaves(made)) + 1
  np.testing.assert_array_equal(run(with_rngs, x), jax.jit(own)(x))


def test_a_plain_jit_holds_no_value_checks_and_checked_jit_still_checks():
  f = models.make_logits_fn(*_lenet(0))
  x = jax.random.uniform(jax.random.key(0), (4, 28, 28, 1))
  y = jnp.arange(4, dtype=jnp.int32)
  plain = lambda k, x, y: _pgd(f, k, x, y)
  # each trace gives the same program (a checkify check would get a new error code)
  texts = [jax.jit(plain).lower(jax.random.key(1), x, y).as_text() for _ in range(2)]
  assert texts[0] == texts[1]
  # ... and a plain jit runs a bad input without a word, as the README's table says
  assert jax.jit(plain)(jax.random.key(1), 2.0 * x, y).shape == x.shape
  checked = checked_jit(plain)
  with pytest.raises(ValueError, match=r"`images` must have values in \[0, 1\]"):
    checked(jax.random.key(1), 2.0 * x, y)
  with pytest.raises(ValueError, match=r"`labels` must be in \[0, 9\]"):
    checked(jax.random.key(1), x, y + 7)
  assert checked(jax.random.key(1), x, y).shape == x.shape
