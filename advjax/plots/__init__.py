"""matplotlib figures (PNG) for reports and notebooks."""
from advjax.plots._training import adversarial_gallery
from advjax.plots._training import save_figure
from advjax.plots._training import training_curves
from advjax.plots._eval import accuracy_vs_eps
from advjax.plots._eval import confidence_histograms
from advjax.plots._eval import corruption_bars
# Augmentations and corruptions.
from advjax.plots._augment import augmentation_examples
from advjax.plots._augment import augmentation_grid
from advjax.plots._augment import corruption_grid
# PASS and hard positives (Rozsa et al. 2016, Figures 2 and 4).
from advjax.plots._pass import pass_distribution_figure
from advjax.plots._pass import pass_examples_figure
from advjax.plots._pass import perturbation_examples

__all__ = [
    "accuracy_vs_eps", "adversarial_gallery", "augmentation_examples", "augmentation_grid",
    "confidence_histograms", "corruption_bars", "corruption_grid", "pass_distribution_figure",
    "pass_examples_figure", "perturbation_examples", "save_figure", "training_curves",
]
