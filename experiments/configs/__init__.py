"""Experiment configs: `get_config(arg=None)`; `arg="quick"` (`--config=FILE.py:quick`) is
the smoke-run variant, defined once here."""


def check_arg(arg) -> None:
  """Raises ValueError unless `arg` is None (the full run) or "quick"."""
  if arg not in (None, "quick"):
    raise ValueError(
      f"unknown config argument {arg!r}; use none (the full run) or ':quick' (a smoke run)"
    )


def quick(c, *, num_examples: int = 200):
  """Shrinks config `c` in place to a smoke run: one epoch, `num_examples` test points,
  every attack, corruption and flip-rate budget cut to a few steps; returns `c`.

  The gradient-masking checks run on all the test points: on a CPU, compiling an attack
  costs more than running it on 200 points, and on the table's points the checks reuse
  the table's compiled PGD (and Square, when it is in the table)."""
  c.num_epochs = 1
  c.eps_warmup_epochs = min(c.eps_warmup_epochs, 1)
  c.eval.num_examples = num_examples
  c.eval.eps_grid = (0.0, c.eval.eps)
  c.eval.attack_options.update(
    {
      "pgd": {"num_steps": 5, "step_size": 0.5},
      # 50 steps x 5 searches: 198 of mnist_hybrid:quick's 200 points broken
      "cw": {"num_steps": 50, "binary_search_steps": 5},
      "square": {"num_queries": 100},
      "autoattack": {"num_steps": 10, "num_queries": 100},
      **{n: {"num_steps": 10} for n in ("apgd_ce", "apgd_dlr", "apgd_t", "fab", "fab_t")},
    }
  )
  c.eval.masking_examples = num_examples
  c.eval.corruption_examples = 100
  c.eval.flip_examples = 50
  c.eval.gallery_size = 4
  return c


def cifar10(
  c,
  *,
  model: str,
  batch_size: int = 128,
  learning_rate: float = 0.1,
  num_epochs: int,
  lr_schedule: str = "piecewise",
  weight_decay: float = 5e-4,
  num_steps: int = 10,
):
  """Sets config `c` in place to CIFAR-10 from TFDS (prepared as array_record on a machine
  with internet: `tfds build cifar10 --file_format=array_record`) with pad-4 crop + flip
  augmentation, SGD with momentum 0.9, PGD-`num_steps` training at eps 8/255 (step
  2.5 * eps / num_steps: 2/255 for PGD-10), and the evaluation at
  RobustBench's Linf eps 8/255 (PGD step 2/255, the CIFAR-10-C severity tables);
  returns `c`."""
  c.dataset = "tfds:cifar10"
  c.validation_size = 1000
  c.train_augment = "pad_crop_flip"
  c.model = model
  c.num_epochs = num_epochs
  c.batch_size = batch_size
  c.optimizer = "sgd"
  c.learning_rate = learning_rate
  c.momentum = 0.9
  c.lr_schedule = lr_schedule
  c.weight_decay = weight_decay
  c.train_attack.name = f"pgd(num_steps={num_steps})"
  c.train_attack.eps = 8 / 255
  c.eval.eps = 8 / 255
  c.eval.eps_grid = (0.0, 2 / 255, 4 / 255, 8 / 255, 12 / 255, 16 / 255)
  c.eval.attack_options.pgd.step_size = 0.25  # of eps: 2/255
  c.eval.batch_size = 250
  c.eval.corruption_tables = "cifar10"  # the CIFAR-10-C severity tables
  return c


def imagenet(
  c,
  *,
  model: str,
  num_epochs: int,
  batch_size: int = 256,
  learning_rate: float = 0.1,
  lr_schedule: str = "cosine",
  weight_decay: float = 1e-4,
  num_steps: int = 3,
  dataset: str = "array_record:data/imagenet",
):
  """Sets config `c` in place to ImageNet on the Grain pipeline; returns `c`.

  Data: `dataset` (default: the ArrayRecord shards that
  `python -m experiments.prepare --source=folder:/data/imagenet --output=data/imagenet`
  writes from an ImageNet folder, `train/<wnid>/*.JPEG` and `val/<wnid>/*.JPEG`), streamed
  as uint8, decoded and augmented in 8 worker processes per host: random-resized crop to
  224 + flip for training, resize 256 + center crop 224 (RobustBench's Res256Crop224) for
  the validation slice (2 images per class) and the evaluation. SGD with Nesterov
  momentum 0.9, PGD-`num_steps` training at eps 4/255 (step 2.5 * eps / num_steps), and
  RobustBench's ImageNet evaluation: Linf eps 4/255 on 5,000 validation images (a seeded
  random choice), PGD step 1/255, the ImageNet-C severity tables.
  """
  c.dataset = dataset
  c.validation_size = 2000
  c.input.pipeline = "grain"
  c.input.workers = 8
  c.input.image_size = 224
  c.input.eval_transform = "resize_center_crop"
  c.input.eval_resize = 256
  c.train_augment = "random_resized_crop_flip"
  c.model = model
  c.num_epochs = num_epochs
  c.batch_size = batch_size
  c.optimizer = "sgd"
  c.learning_rate = learning_rate
  c.momentum = 0.9
  c.nesterov = True
  c.lr_schedule = lr_schedule
  c.weight_decay = weight_decay
  c.train_attack.name = f"pgd(num_steps={num_steps})"
  c.train_attack.eps = 4 / 255
  c.eval.eps = 4 / 255
  c.eval.eps_grid = (0.0, 1 / 255, 2 / 255, 4 / 255, 8 / 255)
  c.eval.attack_options.pgd.step_size = 0.25  # of eps: 1/255
  c.eval.num_examples = 5000
  c.eval.batch_size = 250
  c.eval.corruption_tables = "imagenet"
  return c
