"""benchmarks._timing: the benchmarks' one timer waits for each call's result and reports the
wall and CPU seconds of each timed call."""

import time

import jax
import jax.numpy as jnp

from benchmarks import _timing


def test_each_call_is_timed_until_its_result_is_ready():
  calls = []

  def fn():
    calls.append(time.perf_counter())
    time.sleep(0.02)
    return jnp.ones(3)

  times = _timing.time_calls(fn, 3, warmup=2)
  assert len(calls) == 5 and len(times.wall) == len(times.cpu) == 3
  assert min(times.wall) >= 0.02 and max(times.cpu) < 0.02  # sleeping takes no CPU
  assert times.best() == (min(times.wall), min(times.cpu))
  assert times.median() == sorted(times.wall)[1]


def test_a_jitted_result_is_waited_for():
  x = jnp.ones((400, 400))
  f = jax.jit(lambda x: jnp.linalg.matrix_power(x / 400, 64))
  f(x).block_until_ready()
  waited = _timing.time_calls(lambda: f(x), 5).median()
  computed = []
  for _ in range(5):  # dispatch returns before the product is computed: wait here by hand
    t = time.perf_counter()
    f(x).block_until_ready()
    computed.append(time.perf_counter() - t)
  assert waited >= 0.5 * min(computed)
