"""Per-example randomness: an attack's result for an example depends on the key and the
example's id only, not on the batch it is in, its position there or the sharding.

Every random draw of example b comes from `fold_in(key, example_ids[b])`, and the loops
that stop once every example is done freeze the examples that are done, so stopping
early changes no example's result.

Float rounding: XLA:CPU's matmul (`dot`) rounds a row differently depending on how many
rows the call has. Measured here, rows computed in a batch of 16 vs 64: the MLP below's
first layer `x @ w1` ([B, 784] @ [784, 32]) differs by up to 8.6e-6, the transposed
product of its input gradient ([B, 32] @ [32, 784]) by 1.9e-6, its logits by 7.6e-6; a
LeNet-5's Dense_0 output by 1.2e-6 (its convolutions agree bit for bit). The sign steps
and accept decisions of APGD-CE and APGD-T absorb this: their images agree bit for bit.
FAB-T computes with the raw gradients, and its iterates differ in the last bits (up to
8.9e-8 over 35 of the 64 points when run alone). So AutoAttack's success flags are
asserted identical and its images equal within 1e-6 (measured: 6e-8 on the two points
FAB-T breaks, every other point bit for bit); the single attacks on the tiny model agree
bit for bit.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advjax import attacks
from tests._inputs import MLP_POINTS, mlp_logits, run_on_host_devices, trained_mlp

N, EPS = MLP_POINTS, 0.05
# The standard suite (APGD-CE, APGD-T, FAB-T, Square) at small budgets; at eps 0.05
# APGD-CE and FAB-T both break points of the MLP below.
AA = dict(num_steps=2, num_target_classes=2, num_queries=100)


@pytest.fixture(scope="module")
def mlp(mnist):
  """A 784-32-10 MLP trained on the embedded MNIST and 64 test points (`trained_mlp`)."""
  return trained_mlp(mnist)


@pytest.fixture(scope="module")
def autoattack_runs(mlp):  # ~40 s of CPU
  """AutoAttack on the 64 points in one batch and in four batches of 16."""
  p, x, y = mlp
  f = lambda z: mlp_logits(p, z)  # noqa: E731
  run = jax.jit(lambda k, x, y, ids: attacks.autoattack(k, f, x, y, eps=EPS, example_ids=ids, **AA))
  key, ids = jax.random.key(7), jnp.arange(N, dtype=jnp.int32)
  whole = run(key, x, y, ids)
  parts = [run(key, x[i : i + 16], y[i : i + 16], ids[i : i + 16]) for i in range(0, N, 16)]
  cat = lambda name: np.concatenate([np.asarray(getattr(r, name)) for r in parts])  # noqa: E731
  return whole, cat("images"), cat("success")


@pytest.mark.slow
def test_autoattack_same_per_example_in_batches_of_16_and_64(mlp, autoattack_runs):
  _, x, _ = mlp
  whole, images16, success16 = autoattack_runs
  acc = {k: round(float(v) * N) for k, v in whole.robust_accuracy.items()}
  # APGD-CE and FAB-T break points here (measured: clean 60, then 24, 24, 22, 22)
  assert acc["clean"] > acc["apgd_ce"] and acc["apgd_t"] > acc["fab_t"], acc
  np.testing.assert_array_equal(success16, np.asarray(whole.success))
  np.testing.assert_allclose(images16, np.asarray(whole.images), rtol=0, atol=1e-6)
  assert float(jnp.max(jnp.abs(whole.images - x))) <= EPS + 1e-6


@pytest.mark.slow
def test_autoattack_same_on_one_and_eight_devices(mlp, autoattack_runs, tmp_path):
  """The 64 points on 1 device and sharded over 8 (fake CPU) devices on 'data' give
  the flags of the batch of 64 of this process, and its images within 1e-6 (see the
  module docstring)."""
  p, x, y = mlp
  whole, _, _ = autoattack_runs
  np.savez(
    tmp_path / "in.npz",
    x=np.asarray(x),
    y=np.asarray(y),
    **{k: np.asarray(v) for k, v in p.items()},
  )
  run_on_host_devices(
    f"""
      import jax, jax.numpy as jnp, numpy as np
      from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
      from advjax import attacks
      from tests._inputs import mlp_logits
      d = dict(np.load({str(tmp_path / "in.npz")!r}))
      x, y = jnp.asarray(d.pop("x")), jnp.asarray(d.pop("y"))
      p = {{k: jnp.asarray(v) for k, v in d.items()}}
      f = lambda z: mlp_logits(p, z)
      run = jax.jit(lambda k, x, y, ids: attacks.autoattack(k, f, x, y, eps={EPS!r},
                                                            example_ids=ids, **{AA!r}))
      key, ids = jax.random.key(7), jnp.arange(x.shape[0], dtype=jnp.int32)
      one = run(key, x, y, ids)
      mesh = Mesh(np.array(jax.devices()), ("data",))
      put = lambda a: jax.device_put(a, NamedSharding(mesh, P("data")))
      eight = run(key, put(x), put(y), put(ids))
      assert len(eight.images.sharding.device_set) == 8, eight.images.sharding
      np.savez({str(tmp_path / "out.npz")!r}, one=one.images, one_s=one.success,
               eight=eight.images, eight_s=eight.success)
  """,
    n=8,
    timeout=600,
  )
  r = np.load(tmp_path / "out.npz")
  for images, success in ((r["one"], r["one_s"]), (r["eight"], r["eight_s"])):
    np.testing.assert_array_equal(success, np.asarray(whole.success))
    np.testing.assert_allclose(images, np.asarray(whole.images), rtol=0, atol=1e-6)


# --------------------------------------------------------------------------- #
# Single attacks on a tiny model: an example alone equals the example in a batch
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def tiny():
  w = 0.3 * jax.random.normal(jax.random.key(0), (8 * 8 * 1, 10))
  f = lambda x: 5.0 * jnp.tanh(x.reshape(x.shape[0], -1) @ w)  # noqa: E731
  x = jax.random.uniform(jax.random.key(1), (6, 8, 8, 1))
  return f, x, jnp.argmax(f(x), -1)


def test_pgd_example_alone_equals_example_in_batch(tiny):
  f, x, y = tiny
  norm, eps = "linf", 0.1
  run = jax.jit(
    lambda x, y, ids: attacks.pgd(
      jax.random.key(3), f, x, y, eps=eps, norm=norm, num_steps=3, num_restarts=2, example_ids=ids
    )
  )
  ids = jnp.arange(10, 16, dtype=jnp.int32)
  batch = np.asarray(run(x, y, ids))
  alone = np.concatenate(
    [np.asarray(run(x[i : i + 1], y[i : i + 1], ids[i : i + 1])) for i in range(6)]
  )
  np.testing.assert_array_equal(alone, batch)
  # the start is random (another id gives another result), inside the ball
  other = np.asarray(run(x, y, ids + 100))
  assert np.all(np.any((other != batch).reshape(6, -1), -1))
  assert np.all(np.asarray(attacks.norm_per_example(batch - x, norm)) <= eps + 1e-5)


@pytest.mark.parametrize(
  "name,kw",
  [
    ("square", dict(num_queries=30)),
    ("square_l2", dict(num_queries=30, norm="l2")),
    ("fab_t", dict(num_steps=3, num_restarts=2, num_target_classes=2)),
    ("pgd_l2", dict(num_steps=3, num_restarts=2, norm="l2")),
  ],
)
def test_random_search_and_restarts_independent_of_batch_order(tiny, name, kw):
  """Square's windows, signs and stripes, FAB's random restarts and PGD-L2's starts:
  the batch in another order (ids permuted alike) gives every example the same result.
  (A batch of one is not compared for the L2 attacks: XLA:CPU's matrix-vector product
  for one row rounds differently from the product for several, measured up to 3e-7 on
  PGD-L2's images, which use the raw gradient.)"""
  f, x, y = tiny
  eps = 0.5 if kw.get("norm") == "l2" else 0.1
  attack = attacks.build_attack(name.removesuffix("_l2"), **kw)
  run = jax.jit(lambda x, y, ids: attack(jax.random.key(4), f, x, y, eps, example_ids=ids))
  ids = jnp.arange(6, dtype=jnp.int32)
  perm = np.array([4, 0, 5, 2, 1, 3])
  a = np.asarray(run(x, y, ids))
  b = np.asarray(run(x[perm], y[perm], ids[perm]))[np.argsort(perm)]
  np.testing.assert_array_equal(a, b)
  if name != "fab_t":  # (FAB's random restarts need not beat its first run)
    # positions are not identities: the default ids (0..5 in the new order) differ
    c = np.asarray(run(x[perm], y[perm], ids))[np.argsort(perm)]
    assert np.any(c != a)


def test_default_example_ids_are_positions_and_bad_ids_are_rejected(tiny):
  f, x, y = tiny
  k = jax.random.key(5)
  np.testing.assert_array_equal(
    attacks.fgsm(k, f, x, y, eps=0.1, random_start=True),
    attacks.fgsm(
      k, f, x, y, eps=0.1, random_start=True, example_ids=jnp.arange(6, dtype=jnp.int32)
    ),
  )
  start = attacks.random_init(k, x, 0.1, "linf", example_ids=jnp.arange(3, 9))
  np.testing.assert_array_equal(
    start[1:], attacks.random_init(k, x[1:], 0.1, "linf", example_ids=jnp.arange(4, 9))
  )
  with pytest.raises(ValueError, match="example_ids"):
    attacks.pgd(k, f, x, y, eps=0.1, example_ids=jnp.arange(5))
  with pytest.raises(ValueError, match="example_ids"):
    attacks.square(k, f, x, y, eps=0.1, num_queries=2, example_ids=jnp.zeros(6))
