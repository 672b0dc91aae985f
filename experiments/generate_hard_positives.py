"""Generates an adversarial / hard-positive set (Rozsa et al. 2016) and saves it as .npz.

Flags only; the logic is `advjax.attacks.generate_hard_positive_set`.

  python -m experiments.generate_hard_positives --output=runs/hp/mnist_hc.npz \
      --types=FGS,FGV,HC-D-9 --scales=1.0,1.05,1.10 --tau=0.0 --num_images=1000

A LeNet-5 is trained on the embedded MNIST (`--epochs`), or loaded from
`--model_path` when that file exists (written there after training otherwise).
"""
import os
import sys
import tempfile

from absl import app
from absl import flags
import numpy as np

_OUTPUT = flags.DEFINE_string("output", None, "Where to write the .npz set.")
_TYPES = flags.DEFINE_list("types", ["FGS", "FGV", "HC-D-9"],
                           "Generation types: FGS, FGV, HC-D-k, HC-S-k.")
_SCALES = flags.DEFINE_list("scales", ["1.0", "1.05", "1.10"],
                            "Factors of the minimal perturbation (1.0 = minimal adversarial).")
_TAU = flags.DEFINE_float("tau", 0.0, "Keep rows with PASS >= tau (in [0, 1]).")
_SPLIT = flags.DEFINE_enum("split", "train", ["train", "validation", "test"],
                           "Which embedded-MNIST split to perturb.")
_NUM_IMAGES = flags.DEFINE_integer("num_images", None, "Use the first N images of the split.")
_EPOCHS = flags.DEFINE_integer("epochs", 4, "LeNet-5 training epochs when not loaded.")
_SEED = flags.DEFINE_integer("seed", 0, "Training seed.")
_BATCH = flags.DEFINE_integer("batch_size", 128, "Images per jitted call.")
_MODEL_PATH = flags.DEFINE_string("model_path", None,
                                  "Flax msgpack of the LeNet-5 variables to load or write.")
flags.mark_flags_as_required(["output"])


def _save_bytes_atomically(path, payload):
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=directory)
  with os.fdopen(fd, "wb") as f:
    f.write(payload)
  os.replace(tmp, path)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  import flax.serialization  # pylint: disable=import-outside-toplevel
  from advjax import attacks, data, models, train  # pylint: disable=import-outside-toplevel
  try:
    scales = tuple(float(s) for s in _SCALES.value)
    splits = data.load_mnist5k()
    model = models.get_model("lenet5", num_classes=10)
    path = _MODEL_PATH.value
    if path and os.path.exists(path):
      template = models.init_variables(model, __import__("jax").random.key(0), (28, 28, 1))
      with open(path, "rb") as f:
        variables = flax.serialization.from_bytes(template, f.read())
    else:
      variables = train.fit(model, splits["train"], epochs=_EPOCHS.value, seed=_SEED.value)
      if path:
        _save_bytes_atomically(path, flax.serialization.to_bytes(variables))
    logits_fn = models.make_logits_fn(model, variables)
    ds = splits[_SPLIT.value].take(_NUM_IMAGES.value)
    columns = attacks.generate_hard_positive_set(
        logits_fn, ds.images, ds.labels, tau=_TAU.value, types=tuple(_TYPES.value),
        scales=scales, batch_size=_BATCH.value)
    attacks.save_hard_positive_set(_OUTPUT.value, columns)
  except (ValueError, FileNotFoundError) as err:
    print(f"error: {err}", file=sys.stderr)
    sys.exit(1)
  types, counts = np.unique(columns["type"], return_counts=True)
  print(f"wrote {len(columns['label'])} rows from {len(ds)} {_SPLIT.value} images to "
        f"{_OUTPUT.value}: " + ", ".join(f"{t} {c}" for t, c in zip(types, counts)))


if __name__ == "__main__":
  app.run(main)
