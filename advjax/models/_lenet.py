"""LeNet-5 (LeCun et al. 1998) as used in the MNIST adversarial papers."""
from typing import Callable, Optional, Sequence

import flax.linen as nn
import jax.numpy as jnp

BlockHook = Optional[Callable[[int, jnp.ndarray], jnp.ndarray]]


def max_pool_2x2(x):
  """2x2 max pooling, stride 2. For even sizes a reshape + max: the same values and
  gradients as `nn.max_pool`, with a ~30% cheaper input gradient on XLA:CPU."""
  b, h, w, c = x.shape
  if h % 2 or w % 2:
    return nn.max_pool(x, (2, 2), (2, 2))
  return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


class LeNet5(nn.Module):
  """LeNet-5: conv(6, 5x5) - pool - conv(16, 5x5) - pool - fc 120 - fc 84 - fc K.

  ReLU and max pooling (the modern variant used by Rozsa et al. 2016's Caffe
  LeNet and the hybrid preprint). Takes images in [0, 1] and normalizes inside.

  Attributes:
    num_classes: K.
    features: (conv1, conv2, fc1, fc2) widths; (6, 16, 120, 84) is LeNet-5.
    dropout_rate: dropout before each fully connected layer when > 0 (train only).
    mean, std: per-channel normalization constants (MNIST by default).
  """
  num_classes: int = 10
  features: Sequence[int] = (6, 16, 120, 84)
  dropout_rate: float = 0.0
  mean: Sequence[float] = (0.1307,)
  std: Sequence[float] = (0.3081,)

  num_blocks = 4

  @nn.compact
  def __call__(self, x, train: bool = False, block_hook: BlockHook = None):
    """Args: x [B, H, W, C] in [0, 1]; train: dropout on; block_hook(i, h) -> h is
    applied to the input (i = 0) and after each block i = 1..4 (manifold mixup,
    noise injection). Returns logits [B, num_classes]."""
    hook = block_hook or (lambda i, h: h)
    x = (x - jnp.asarray(self.mean)) / jnp.asarray(self.std)
    x = hook(0, x)
    c1, c2, f1, f2 = self.features
    x = max_pool_2x2(nn.relu(nn.Conv(c1, (5, 5), padding="SAME")(x)))
    x = hook(1, x)
    x = max_pool_2x2(nn.relu(nn.Conv(c2, (5, 5), padding="VALID")(x)))
    x = hook(2, x)
    x = x.reshape(x.shape[0], -1)
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    x = hook(3, nn.relu(nn.Dense(f1)(x)))
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    x = hook(4, nn.relu(nn.Dense(f2)(x)))
    return nn.Dense(self.num_classes)(x)
