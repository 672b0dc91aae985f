"""matplotlib figures for reports and notebooks.

Every plotting function builds and returns a `matplotlib.figure.Figure` (a plain object,
outside pyplot's global state, so nothing accumulates in long runs); `save_figure` writes
one to a PNG atomically. In a notebook, display the returned Figure or save it.
"""

from advjax import _extras

_extras.require("advjax.plots", "matplotlib")

from advjax.plots._figure import save_figure

# Training and evaluation reports.
from advjax.plots._training import adversarial_gallery
from advjax.plots._training import gallery_captions
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
  "save_figure",
  "accuracy_vs_eps",
  "adversarial_gallery",
  "confidence_histograms",
  "corruption_bars",
  "gallery_captions",
  "training_curves",
  "augmentation_examples",
  "augmentation_grid",
  "corruption_grid",
  "pass_distribution_figure",
  "pass_examples_figure",
  "perturbation_examples",
]
