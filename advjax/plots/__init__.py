"""matplotlib figures (PNG) for reports and notebooks."""
from advjax.plots._training import adversarial_gallery
from advjax.plots._training import training_curves
