"""The training extra: what `pip install advjax` leaves out, and the error when it is missing.

`pip install advjax` installs the transforms (attacks, augment, losses, metrics, models, data's
in-memory pipeline) with jax, flax, optax, dm-pix, chex and numpy. The training and experiment
stack (`advjax.train`, `advjax.eval`, `advjax.plots`, the dataset loaders of `advjax.data` and
`experiments/`) also needs the packages below: `pip install 'advjax[train]'`. pyproject.toml's
`train` extra is the same set, with versions.
"""

import importlib
import importlib.util

EXTRA = "train"
INSTALL = f"pip install 'advjax[{EXTRA}]'"

# import name -> the distribution that provides it (as pyproject.toml's train extra spells it).
DISTRIBUTIONS = {
  "absl": "absl-py",
  "matplotlib": "matplotlib",
  "ml_collections": "ml-collections",
  "mlxtend": "mlxtend",
  "orbax": "orbax-checkpoint",
  "PIL": "Pillow",
  "tensorflow_datasets": "tensorflow-datasets",
  "tensorboardX": "tensorboardX",
  "tqdm": "tqdm",
}


def _is_missing(err: ModuleNotFoundError, module: str) -> bool:
  """True if `err` says `module` itself (or a parent package of it) is not installed."""
  return err.name is not None and (module == err.name or module.startswith(err.name + "."))


def require(feature: str, *modules: str) -> None:
  """Checks that `modules` are installed, without importing them (their import, and
  what it imports in turn, happens where they are used); if any is not, raises one
  ModuleNotFoundError naming them.

  Args:
    feature: what needs them, for the message ("advjax.train", "advjax.data.load_tfds").
    *modules: import names ("orbax.checkpoint", "ml_collections").

  Raises:
    ModuleNotFoundError: "`feature` needs the training extra: pip install 'advjax[train]'
      (missing: ...)".
  """
  missing = []
  for module in modules:
    try:
      found = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError as err:  # a parent package is not installed
      if not _is_missing(err, module):
        raise
      found = False
    if not found:
      missing.append(module)
  if missing:
    names = [DISTRIBUTIONS.get(m.split(".")[0], m.split(".")[0]) for m in missing]
    raise ModuleNotFoundError(
      f"{feature} needs the training extra: {INSTALL} (missing: {', '.join(names)})",
      name=missing[0],
    )
