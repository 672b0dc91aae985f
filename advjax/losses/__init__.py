"""Per-example losses ([B] outputs; the caller reduces) and loss weights."""

from advjax.losses._classification import accuracy
from advjax.losses._classification import adaptive_alpha
from advjax.losses._classification import cross_entropy

# Margins that attacks and adversarial augmentations (ACE) ascend.
from advjax.losses._margins import cw_margin
from advjax.losses._margins import dlr

__all__ = ["accuracy", "adaptive_alpha", "cross_entropy", "cw_margin", "dlr"]

# The AugMix / NoisyMix consistency loss.
from advjax.losses._consistency import jsd_consistency  # noqa: E402

__all__ += ["jsd_consistency"]

# The robust-training losses of TRADES and MART.
from advjax.losses._robust import mart_loss  # noqa: E402
from advjax.losses._robust import trades_kl  # noqa: E402

__all__ += ["mart_loss", "trades_kl"]
