"""Flax models taking [0, 1] NHWC images and normalizing inside."""
from advjax.models._lenet import LeNet5
from advjax.models._registry import MODELS
from advjax.models._registry import get_model
from advjax.models._registry import init_variables
from advjax.models._registry import make_logits_fn
from advjax.models._resnet import ResNet18

__all__ = ["LeNet5", "MODELS", "ResNet18", "get_model", "init_variables", "make_logits_fn"]
