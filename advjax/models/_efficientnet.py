"""EfficientNet-B0 (Tan & Le 2019) in torchvision's layout.

Layout and names are those of `torchvision.models.efficientnet_b0`:
`features_0` (3x3 stride-2 conv + BatchNorm + SiLU), seven stages `features_1..7`
of MBConv blocks, `features_8` (1x1 conv to 1280 + BatchNorm + SiLU), global
average pooling, dropout 0.2 and `classifier_1`. An MBConv block is `block_k`
layers: a 1x1 expansion (absent when the expansion ratio is 1), the depthwise
kxk convolution (carrying the stride), squeeze-excitation (`fc1`, `fc2`: 1x1
convolutions with bias, SiLU then sigmoid) and the 1x1 projection; each
conv + norm layer is `block_k_0` (conv) and `block_k_1` (BatchNorm). A torch path
`features.1.0.block.1.fc1.weight` is the Flax path
("features_1_0", "block_1", "fc1", "kernel"). BatchNorm has torch's defaults
(epsilon 1e-5, momentum 0.1), as torchvision's B0 (its B5-B7 and V2 use 1e-3).
"""

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from advjax.models import _resnet
from advjax.models._lenet import BlockHook
from advjax.models._resnet50 import IMAGENET_MEAN
from advjax.models._resnet50 import IMAGENET_STD
from advjax.models._resnet50 import KAIMING_FAN_OUT

# (expand ratio, kernel, stride, input channels, output channels, layers): Table 1
# of Tan & Le 2019, as torchvision's `_efficientnet_conf("efficientnet_b0")`.
B0_STAGES = (
  (1, 3, 1, 32, 16, 1),
  (6, 3, 2, 16, 24, 2),
  (6, 5, 2, 24, 40, 2),
  (6, 3, 2, 40, 80, 3),
  (6, 5, 1, 80, 112, 3),
  (6, 5, 2, 112, 192, 4),
  (6, 3, 1, 192, 320, 1),
)


class SqueezeExcitation(nn.Module):
  """x * sigmoid(fc2(silu(fc1(mean_hw(x))))) (Hu et al. 2018), fc1 and fc2 1x1
  convolutions with bias as torchvision's."""

  squeeze_channels: int
  dtype: _resnet.Dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    d = self.dtype
    s = jnp.mean(x.astype(jnp.float32), axis=(1, 2), keepdims=True)
    s = _resnet.conv(
      self.squeeze_channels, 1, dtype=d, name="fc1", use_bias=True, kernel_init=KAIMING_FAN_OUT
    )(s)
    s = _resnet.conv(
      x.shape[-1], 1, dtype=d, name="fc2", use_bias=True, kernel_init=KAIMING_FAN_OUT
    )(nn.silu(s))
    return x * nn.sigmoid(s).astype(x.dtype)


class MBConv(nn.Module):
  """Inverted residual block with squeeze-excitation; the residual (stride 1,
  same width) is dropped per example with probability `stochastic_depth_rate`
  in training (Huang et al. 2016, torchvision's "row" mode)."""

  features: int
  expand_ratio: int
  kernel: int
  strides: int
  stochastic_depth_rate: float = 0.0
  norm_epsilon: float = 1e-5
  dtype: _resnet.Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    d = self.dtype
    cin = x.shape[-1]
    expanded = cin * self.expand_ratio

    def conv_norm(h, features, kernel, strides, k, act=True, groups=1):
      h = _resnet.conv(
        features,
        kernel,
        strides,
        dtype=d,
        name=f"block_{k}_0",
        feature_group_count=groups,
        kernel_init=KAIMING_FAN_OUT,
      )(h)
      h = _resnet.batch_norm(train, dtype=d, name=f"block_{k}_1", epsilon=self.norm_epsilon)(h)
      return nn.silu(h) if act else h

    k = 0
    out = x
    if expanded != cin:
      out, k = conv_norm(out, expanded, 1, 1, k), k + 1
    out = conv_norm(out, expanded, self.kernel, self.strides, k, groups=expanded)
    out = SqueezeExcitation(max(1, cin // 4), dtype=d, name=f"block_{k + 1}")(out)
    out = conv_norm(out, self.features, 1, 1, k + 2, act=False)
    if self.strides == 1 and cin == self.features:
      # Dropout with a mask broadcast over H, W, C is stochastic depth's per-example
      # drop with 1 / (1 - rate) scaling.
      out = nn.Dropout(
        self.stochastic_depth_rate,
        broadcast_dims=(1, 2, 3),
        deterministic=not train,
        name="stochastic_depth",
      )(out)
      out = out + x
    return out


def _linear_init(key, shape, dtype=jnp.float32):
  """torchvision's classifier init: U(-1/sqrt(out), 1/sqrt(out))."""
  r = 1.0 / math.sqrt(shape[-1])
  return jax.random.uniform(key, shape, dtype, -r, r)


class EfficientNetB0(nn.Module):
  """EfficientNet-B0 for ImageNet (224x224); normalizes [0, 1] images inside.

  5,288,548 parameters for 1000 classes (torchvision's `efficientnet_b0()`).

  Attributes:
    num_classes: K.
    dropout_rate: dropout before the classifier (0.2; train only).
    stochastic_depth_rate: largest stochastic depth drop rate, growing linearly
      from 0 over the blocks (0.2 as torchvision's; train only, 0 turns it off).
    norm_epsilon: BatchNorm epsilon (1e-5 as torchvision's B0; 1e-3 for
      weights ported from TensorFlow).
    stages: seven (expand ratio, kernel, stride, input channels, output
      channels, layers) rows; `B0_STAGES` (Table 1 of the paper) by default.
      The stem has the first row's input channels, the head 4x the last row's
      output channels (1280 for B0).
    mean, std: per-channel normalization (ImageNet by default).
    dtype: compute dtype (e.g. `jnp.bfloat16`); parameters, batch statistics,
      the input normalization and the logits stay float32.
  """

  num_classes: int = 1000
  dropout_rate: float = 0.2
  stochastic_depth_rate: float = 0.2
  norm_epsilon: float = 1e-5
  stages: Sequence[Sequence[int]] = B0_STAGES
  mean: Sequence[float] = IMAGENET_MEAN
  std: Sequence[float] = IMAGENET_STD
  dtype: _resnet.Dtype = jnp.float32

  num_blocks = 8

  @nn.compact
  def __call__(self, x, train: bool = False, block_hook: BlockHook = None):
    """Args: x [B, H, W, C] in [0, 1]; train: batch statistics, dropout and
    stochastic depth (a "dropout" RNG); block_hook(i, h) applied at the input
    (0), after the stem (1) and after each of the seven MBConv stages (2..8).
    Returns float32 logits [B, num_classes].

    Raises:
      ValueError: if `stages` has not seven rows of six integers.
    """
    if len(self.stages) != 7 or any(len(row) != 6 for row in self.stages):
      raise ValueError(
        "`stages` must be 7 rows (expand ratio, kernel, stride, input "
        f"channels, output channels, layers); got {self.stages!r}."
      )
    hook = block_hook or (lambda i, h: h)
    d = self.dtype
    eps = self.norm_epsilon
    x = hook(0, _resnet.normalize(x, self.mean, self.std))
    x = _resnet.conv(
      self.stages[0][3], 3, 2, dtype=d, name="features_0_0", kernel_init=KAIMING_FAN_OUT
    )(x)
    x = nn.silu(_resnet.batch_norm(train, dtype=d, name="features_0_1", epsilon=eps)(x))
    x = hook(1, x)
    total = sum(stage[-1] for stage in self.stages)
    block_id = 0
    for s, (expand, kernel, stride, _, cout, layers) in enumerate(self.stages):
      for j in range(layers):
        x = MBConv(
          cout,
          expand,
          kernel,
          stride if j == 0 else 1,
          self.stochastic_depth_rate * block_id / total,
          eps,
          dtype=d,
          name=f"features_{s + 1}_{j}",
        )(x, train)
        block_id += 1
      x = hook(2 + s, x)
    x = _resnet.conv(
      4 * self.stages[-1][4], 1, dtype=d, name="features_8_0", kernel_init=KAIMING_FAN_OUT
    )(x)
    x = nn.silu(_resnet.batch_norm(train, dtype=d, name="features_8_1", epsilon=eps)(x))
    x = _resnet.global_avg_pool(x)
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    x = _resnet.dense(self.num_classes, dtype=d, name="classifier_1", kernel_init=_linear_init)(x)
    return x.astype(jnp.float32)
