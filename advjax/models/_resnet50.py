"""ResNet-50 (He et al. 2016) in torchvision's ImageNet layout (ResNet v1.5).

Layout and names are those of `torchvision.models.resnet50`: a 7x7 stride-2 stem
`conv1` (padding 3) + `bn1` + ReLU + 3x3 stride-2 max pooling (padding 1), four
stages `layer1..4` of bottleneck blocks (`conv1` 1x1, `conv2` 3x3 carrying the
stride -- v1.5 --, `conv3` 1x1, `bn1..3`, `downsample_0` conv 1x1 +
`downsample_1` BatchNorm where the shape changes), global average pooling and
`fc`. A torch path `layer1.0.downsample.0.weight` is the Flax path
("layer1_0", "downsample_0", "kernel").
"""

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from advjax.models import _resnet
from advjax.models._lenet import BlockHook

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# torchvision's `kaiming_normal_(mode="fan_out", nonlinearity="relu")`.
KAIMING_FAN_OUT = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


class Bottleneck(nn.Module):
  """1x1 -> 3x3 (stride) -> 1x1 (4x channels), BatchNorm after each, ReLU after
  the sum with the shortcut."""

  features: int
  strides: int = 1
  dtype: _resnet.Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    d = self.dtype
    conv = lambda f, k, s, name: _resnet.conv(
      f, k, s, dtype=d, name=name, kernel_init=KAIMING_FAN_OUT
    )
    out = conv(self.features, 1, 1, "conv1")(x)
    out = nn.relu(_resnet.batch_norm(train, dtype=d, name="bn1")(out))
    out = conv(self.features, 3, self.strides, "conv2")(out)
    out = nn.relu(_resnet.batch_norm(train, dtype=d, name="bn2")(out))
    out = conv(4 * self.features, 1, 1, "conv3")(out)
    out = _resnet.batch_norm(train, dtype=d, name="bn3")(out)
    if self.strides != 1 or x.shape[-1] != 4 * self.features:
      x = conv(4 * self.features, 1, self.strides, "downsample_0")(x)
      x = _resnet.batch_norm(train, dtype=d, name="downsample_1")(x)
    return nn.relu(out + x)


class ResNet50(nn.Module):
  """ResNet-50 for ImageNet (224x224); normalizes [0, 1] images inside.

  25,557,032 parameters for 1000 classes (torchvision's `resnet50()`).

  Attributes:
    num_classes: K.
    stage_sizes: bottleneck blocks per stage ((3, 4, 6, 3) is ResNet-50).
    width: bottleneck channels of the first stage (64; outputs are 4x).
    mean, std: per-channel normalization (ImageNet by default).
    dtype: compute dtype (e.g. `jnp.bfloat16`); parameters, batch statistics,
      the input normalization and the logits stay float32.
  """

  num_classes: int = 1000
  stage_sizes: Sequence[int] = (3, 4, 6, 3)
  width: int = 64
  mean: Sequence[float] = IMAGENET_MEAN
  std: Sequence[float] = IMAGENET_STD
  dtype: _resnet.Dtype = jnp.float32

  num_blocks = 5

  @nn.compact
  def __call__(self, x, train: bool = False, block_hook: BlockHook = None):
    """Args: x [B, H, W, C] in [0, 1]; train: batch statistics;
    block_hook(i, h) applied at the input (0), after the stem and its max
    pooling (1) and after each stage (2..5). Returns float32 logits
    [B, num_classes]."""
    hook = block_hook or (lambda i, h: h)
    d = self.dtype
    x = hook(0, _resnet.normalize(x, self.mean, self.std))
    x = _resnet.conv(
      self.width, 7, 2, dtype=d, name="conv1", padding=3, kernel_init=KAIMING_FAN_OUT
    )(x)
    x = nn.relu(_resnet.batch_norm(train, dtype=d, name="bn1")(x))
    x = hook(1, nn.max_pool(x, (3, 3), (2, 2), padding=((1, 1), (1, 1))))
    for i, n in enumerate(self.stage_sizes):
      for j in range(n):
        x = Bottleneck(
          self.width * 2**i, 2 if (i > 0 and j == 0) else 1, dtype=d, name=f"layer{i + 1}_{j}"
        )(x, train)
      x = hook(2 + i, x)
    x = _resnet.global_avg_pool(x)
    return _resnet.dense(self.num_classes, dtype=d, name="fc")(x).astype(jnp.float32)
