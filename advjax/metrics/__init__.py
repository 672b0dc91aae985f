"""Metrics: SSIM, ECC alignment, PASS, perturbation norms. Per-example outputs [B].

All functions expect float-encoded images, NHWC, with values in [0, 1].
"""

from advjax.metrics._ecc import EccResult
from advjax.metrics._ecc import ecc_homography
from advjax.metrics._ecc import warp_homography
from advjax.metrics._norms import l2_norm
from advjax.metrics._norms import l2_per_pixel
from advjax.metrics._norms import linf_norm
from advjax.metrics._pass import PassInfo
from advjax.metrics._pass import PassResult
from advjax.metrics._pass import pass_score
from advjax.metrics._pass import pass_score_with_info
from advjax.metrics._ssim import ssim

__all__ = [
  "EccResult",
  "PassInfo",
  "ecc_homography",
  "l2_norm",
  "l2_per_pixel",
  "linf_norm",
  "PassResult",
  "pass_score",
  "pass_score_with_info",
  "ssim",
  "warp_homography",
]
