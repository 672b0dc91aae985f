"""Pure-functional augmentations and corruptions (all in JAX; jit, vmap, any device).

Per-example functions take `(key, image[H, W, C], *, options)` with float images
in [0, 1] and return an image of the same shape and dtype; batch them with
`jax.vmap` over `jax.random.split(key, B)`. Batch-level functions say so in their
names (`mixup_batch`, `cutmix_batch`, `corrupt_batch`, `maxup_worst_copy`).
Model hooks (`manifold_mixup_hook`, `noise_hook`, `noisy_mixup_hook`) plug into
the `block_hook` argument of the advjax models.
"""

from advjax.augment._ace import AceResult
from advjax.augment._corruptions import TABLES as CORRUPTION_TABLES
from advjax.augment._maxup import worst_copy as maxup_worst_copy
from advjax.augment._ops import affine_transform
from advjax.augment._ops import rotation_matrix
from advjax.augment._ace import ace
from advjax.augment._ace import ace_with_info
from advjax.augment._ace import apply_color_filter
from advjax.augment._ace import random_color_filter
from advjax.augment._augmix import augmix
from advjax.augment._augmix import augmix_op
from advjax.augment._augmix import augmix_op_names
from advjax.augment._corruptions import corrupt
from advjax.augment._corruptions import corrupt_batch
from advjax.augment._corruptions import corrupted_test_set
from advjax.augment._corruptions import corruption_names
from advjax.augment._corruptions import frost_texture
from advjax.augment._corruptions import jpeg
from advjax.augment._diffaugment import POLICIES as DIFFAUGMENT_POLICIES
from advjax.augment._diffaugment import diffaugment
from advjax.augment._mixing import MixupPlan
from advjax.augment._mixing import cutmix_batch
from advjax.augment._mixing import manifold_mixup_hook
from advjax.augment._mixing import mix_views
from advjax.augment._mixing import mixup_batch
from advjax.augment._mixing import mixup_targets
from advjax.augment._mixing import sample_mixup_plan
from advjax.augment._noise import additive_noise
from advjax.augment._noise import multiplicative_noise
from advjax.augment._noise import noise_hook
from advjax.augment._noise import noise_views
from advjax.augment._noise import noisy_mixup_hook
from advjax.augment._noise import sparse_noise

__all__ = [
  "AceResult",
  "CORRUPTION_TABLES",
  "MixupPlan",
  "ace",
  "ace_with_info",
  "affine_transform",
  "maxup_worst_copy",
  "rotation_matrix",
  "additive_noise",
  "apply_color_filter",
  "augmix",
  "augmix_op",
  "augmix_op_names",
  "corrupt",
  "corrupt_batch",
  "corrupted_test_set",
  "corruption_names",
  "cutmix_batch",
  "diffaugment",
  "DIFFAUGMENT_POLICIES",
  "frost_texture",
  "jpeg",
  "manifold_mixup_hook",
  "mix_views",
  "mixup_batch",
  "mixup_targets",
  "multiplicative_noise",
  "noise_hook",
  "noise_views",
  "noisy_mixup_hook",
  "random_color_filter",
  "sample_mixup_plan",
  "sparse_noise",
]
