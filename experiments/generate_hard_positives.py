"""Generates an adversarial / hard-positive set (Rozsa et al. 2016) and saves it as .npz.

Flags only; the logic is `advjax.attacks.generate_hard_positive_set`.

  python -m experiments.generate_hard_positives --output=runs/hp/mnist_hc.npz \
      --types=FGS,FGV,HC-D-9 --scales=1.0,1.05,1.10 --tau=0.0 --num_images=1000

A LeNet-5 is trained on the embedded MNIST (`--epochs`), or loaded from
`--model_path` when that file exists (written there after training otherwise). A wrong
flag is one line and exit 2, checked before any training; a failure while generating is
one line and exit 1 (experiments/_cli.py).
"""

import os
import tempfile

from absl import flags
from absl import logging
import numpy as np

from experiments import _cli


def _define_flags():
  # Defined only when run as a program: absl flags are process-wide, and tests and
  # users import several experiments/ modules into one process.
  flags.DEFINE_string("output", None, "Where to write the .npz set.")
  flags.DEFINE_list(
    "types", ["FGS", "FGV", "HC-D-9"], "Generation types: FGS, FGV, HC-D-k, HC-S-k."
  )
  flags.DEFINE_list(
    "scales",
    ["1.0", "1.05", "1.10"],
    "Factors of the minimal perturbation (1.0 = minimal adversarial).",
  )
  flags.DEFINE_float("tau", 0.0, "Keep rows with PASS >= tau (in [0, 1]).")
  flags.DEFINE_enum(
    "split", "train", ["train", "validation", "test"], "Which embedded-MNIST split to perturb."
  )
  flags.DEFINE_integer("num_images", None, "Use the first N images of the split.")
  flags.DEFINE_integer("epochs", 4, "LeNet-5 training epochs when not loaded.")
  flags.DEFINE_integer("seed", 0, "Training seed.")
  flags.DEFINE_integer("batch_size", 128, "Images per jitted call.")
  flags.DEFINE_string("model_path", None, "Flax msgpack of the LeNet-5 variables to load or write.")
  flags.mark_flags_as_required(["output"])


def _save_bytes_atomically(path, payload):
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=directory)
  with os.fdopen(fd, "wb") as f:
    f.write(payload)
  os.replace(tmp, path)


def _check_flags():
  """The flags' values, checked before any training; raises _cli.UsageError."""
  from advjax import attacks  # pylint: disable=import-outside-toplevel

  if not flags.FLAGS.types:
    raise _cli.UsageError("--types is empty; give some of FGS, FGV, HC-D-k, HC-S-k")
  for spec in flags.FLAGS.types:
    try:
      attacks.parse_hard_positive_type(spec)
    except ValueError as err:
      raise _cli.UsageError(f"--types: {err}") from None
  try:
    scales = tuple(float(s) for s in flags.FLAGS.scales)
  except ValueError:
    scales = ()
  if not scales or min(scales) <= 0:
    raise _cli.UsageError(
      f"--scales={','.join(flags.FLAGS.scales)}: give positive factors of "
      f"the minimal perturbation, e.g. --scales=1.0,1.05,1.10"
    )
  if not 0.0 <= flags.FLAGS.tau <= 1.0:
    raise _cli.UsageError(f"--tau={flags.FLAGS.tau:g}: PASS thresholds are in [0, 1]")
  for flag, value in (
    ("num_images", flags.FLAGS.num_images),
    ("epochs", flags.FLAGS.epochs),
    ("batch_size", flags.FLAGS.batch_size),
  ):
    if value is not None and value < 1:
      raise _cli.UsageError(f"--{flag}={value}: give a positive integer")
  if os.path.isdir(flags.FLAGS.output):
    raise _cli.UsageError(
      f"--output={flags.FLAGS.output} is a folder; pass the .npz file to "
      f"write, e.g. --output={os.path.join(flags.FLAGS.output, 'set.npz')}"
    )
  path = flags.FLAGS.model_path
  if path and os.path.exists(path) and not os.path.isfile(path):
    raise _cli.UsageError(f"--model_path={path} is not a file; pass a .msgpack file path")
  return scales


def main(argv):
  _cli.no_arguments(argv)
  logging.set_verbosity(logging.WARNING)
  scales = _check_flags()
  import flax.serialization  # pylint: disable=import-outside-toplevel
  import jax  # pylint: disable=import-outside-toplevel
  from advjax import attacks, data, models, train  # pylint: disable=import-outside-toplevel

  splits = data.load_mnist5k()
  model = models.get_model("lenet5", num_classes=10)
  path = flags.FLAGS.model_path
  if path and os.path.exists(path):
    template = models.init_variables(model, jax.random.key(0), (28, 28, 1))
    with open(path, "rb") as f:
      try:
        variables = flax.serialization.from_bytes(template, f.read())
      except ValueError as err:
        raise _cli.UsageError(
          f"--model_path={path} does not hold LeNet-5 variables written "
          f"by this command ({err}); pass another path, or delete it to "
          f"train and write one"
        ) from None
  else:
    variables = train.fit(model, splits["train"], epochs=flags.FLAGS.epochs, seed=flags.FLAGS.seed)
    if path:
      _save_bytes_atomically(path, flax.serialization.to_bytes(variables))
  logits_fn = models.make_logits_fn(model, variables)
  ds = splits[flags.FLAGS.split].take(flags.FLAGS.num_images)
  columns = attacks.generate_hard_positive_set(
    logits_fn,
    ds.images,
    ds.labels,
    tau=flags.FLAGS.tau,
    types=tuple(flags.FLAGS.types),
    scales=scales,
    batch_size=flags.FLAGS.batch_size,
  )
  attacks.save_hard_positive_set(flags.FLAGS.output, columns)
  types, counts = np.unique(columns["type"], return_counts=True)
  print(
    f"wrote {len(columns['label'])} rows from {len(ds)} {flags.FLAGS.split} images to "
    f"{flags.FLAGS.output}: " + ", ".join(f"{t} {c}" for t, c in zip(types, counts))
  )


if __name__ == "__main__":
  _define_flags()
  _cli.run(main)
