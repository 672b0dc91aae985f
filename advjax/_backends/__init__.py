"""Backend specializations: rewrites of portable ops that run faster on one backend.

The plain JAX code of an op, in the op's own module, is its definition and runs on
every backend. A specialization here computes the same values and gradients (to
float rounding, tested in `tests/test_backends.py`) in a form that one backend's
compiler handles better. An op picks it with `on_cpu`, a
`jax.lax.platform_dependent` switch that JAX resolves when the program is lowered
for a device: the compiled program holds only the chosen branch, and a program
lowered for a GPU or TPU never runs (or compiles) the CPU code.

Modules:
  cpu_fusion: a fusion boundary XLA:CPU keeps (for `advjax._fusion.materialize`).
  cpu_lenet: LeNet's convolution + 2x2 max pooling (for `models.conv_pool_2x2`).
  cpu_blur: a small-image filter as one dense matrix (for defocus blur).
  cpu_sizes: chunk sizes of ECC and PASS's batched loops.

tests/test_backends.py runs the portable code on CPU too, with `on_cpu` replaced by its
portable branch (`tests/_inputs.portable_only`).

See docs/architecture.md, "Backend specializations".
"""

import jax


def on_cpu(cpu, portable, *args):
  """`cpu(*args)` in a program lowered for CPU, `portable(*args)` on any other backend.

  Both callables take the same arrays (pytrees) and return the same shapes and
  dtypes; static options are closed over. Chosen at lowering time, not from
  `jax.default_backend()` at trace time, so the choice follows the device the
  program is compiled for. Outside a trace only the chosen callable runs.
  """
  return jax.lax.platform_dependent(*args, cpu=cpu, default=portable)
