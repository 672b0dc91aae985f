"""advjax's experiment commands (`python -m experiments.<command>`); they need the training
extra: pip install 'advjax[train]'."""

from advjax import _extras

# the first packages every command imports; the dataset loaders and advjax.train check theirs
_extras.require("experiments", "absl", "ml_collections")
