"""A small image's 2-D filter as one dense matrix, for XLA:CPU.

XLA:CPU's convolution is slow for one input channel and large kernels (defocus
blur's 17x17 - 21x21 disks); on images of at most `MAX_PIXELS` pixels the filter,
border included, is faster as one [HW, HW] matmul. The portable code is
`advjax.augment._ops.filter2d`.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

# The matrix has MAX_PIXELS^2 entries (64 MB of float32 at 64 x 64 pixels).
MAX_PIXELS = 4096


def filter2d(image, kernel: np.ndarray, mode: str):
  """`_ops.filter2d(image, kernel, mode=mode)` of an [H, W, C] image as one matmul."""
  h, w = image.shape[0], image.shape[1]
  mat = _filter_matrix(h, w, tuple(map(tuple, np.asarray(kernel, np.float32).tolist())), mode)
  return jnp.einsum(
    "pq,qc->pc", jnp.asarray(mat), image.reshape(h * w, -1), precision=jax.lax.Precision.HIGHEST
  ).reshape(image.shape)


# One entry per severity of one image size (the corruption benchmarks' loop).
@functools.lru_cache(maxsize=5)
def _filter_matrix(h: int, w: int, kernel: tuple, mode: str) -> np.ndarray:
  """The linear map of `_ops.filter2d(., kernel, mode)` on [H, W] as an [HW, HW]
  matrix; `kernel` as a tuple of rows (hashable, so it keys the cache)."""
  kernel = np.asarray(kernel, np.float32)
  r = kernel.shape[0] // 2
  idx = np.pad(np.arange(h * w).reshape(h, w), r, mode=mode)
  mat = np.zeros((h * w, h * w), np.float32)
  rows = np.arange(h * w).reshape(h, w)
  for dy in range(kernel.shape[0]):
    for dx in range(kernel.shape[1]):
      np.add.at(mat, (rows.ravel(), idx[dy : dy + h, dx : dx + w].ravel()), kernel[dy, dx])
  return mat
