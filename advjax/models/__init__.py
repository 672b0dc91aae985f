"""Flax models taking [0, 1] NHWC images and normalizing inside."""

from advjax.models._efficientnet import EfficientNetB0
from advjax.models._lenet import LeNet5
from advjax.models._preact_resnet import PreActResNet18
from advjax.models._registry import MODELS
from advjax.models._registry import get_model
from advjax.models._registry import init_variables
from advjax.models._registry import jit_argument
from advjax.models._registry import jit_with_model
from advjax.models._registry import make_logits_fn
from advjax.models._registry import model_attributes
from advjax.models._resnet import ResNet18
from advjax.models._resnet50 import ResNet50
from advjax.models._torch_import import from_torch
from advjax.models._wide_resnet import WideResNet

__all__ = [
  # Models: MNIST, CIFAR, ImageNet
  "LeNet5",
  "ResNet18",
  "PreActResNet18",
  "WideResNet",
  "ResNet50",
  "EfficientNetB0",
  # By name
  "MODELS",
  "get_model",
  "init_variables",
  "make_logits_fn",
  "jit_argument",
  "jit_with_model",
  "model_attributes",
  # PyTorch checkpoints
  "from_torch",
]
