"""`materialize`: store a value that many consumers read (a fusion boundary on CPU).

XLA fuses cheap elementwise producers into each of their consumers and
recomputes them there. On XLA:CPU that recomputation is slow when the producer
is made of many slices or gathers, so there the value is computed once behind a
fusion boundary (`advjax._backends.cpu_fusion`). Other backends get `fn(*args)`
as is and leave fusion to their compiler. Used for ECC's bilinear samples and
Jacobian factors (read once per gathered corner and moment), PASS's aligned
images (read three times by SSIM) and AugMix's equalize tables (read per pixel).
"""

import functools

from advjax import _backends
from advjax._backends import cpu_fusion


def materialize(fn, *args):
  """`fn(*args)`; on CPU computed once and stored, not recomputed in each consumer."""
  return _backends.on_cpu(functools.partial(cpu_fusion.materialize, fn), fn, *args)
