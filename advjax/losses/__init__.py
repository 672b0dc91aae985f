"""Per-example losses ([B] outputs; the caller reduces) and loss weights."""
from advjax.losses._classification import accuracy
from advjax.losses._classification import adaptive_alpha
from advjax.losses._classification import cross_entropy

__all__ = ["accuracy", "adaptive_alpha", "cross_entropy"]
