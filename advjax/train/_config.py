"""The training config schema: every key, its default and its checks.

Configs are `ml_collections.ConfigDict`s of plain data. `default_config()` lists
every key that `train_and_evaluate` reads; `validate_config` rejects unknown
keys and bad values before anything is written to the workdir.
"""

import json
import os

import ml_collections

from advjax import _validate
from advjax import augment
from advjax import data
from advjax import models
from advjax.eval import default_eval_config
from advjax.eval import check_attack_options
from advjax.eval import parse_attack_specs
from advjax.train import _objectives
from advjax.train import _schedules
from advjax.train import _stall
from advjax.train import _step
from advjax.train import _views

CURRICULA = ("none", "steps")
# config.dtype's values.
COMPUTE_DTYPES = ("float32", "bfloat16")

# Config keys that hold a tuple of names: (key, what a name is, the known names; None:
# any, checked by the function that reads them).
_NAME_TUPLES = (
  ("eval.corruptions", "corruption", lambda: ("common",) + tuple(augment.corruption_names("all"))),
  ("noisymix.policy", "DiffAugment policy", lambda: augment.DIFFAUGMENT_POLICIES),
)


# Top-level keys added after runs were saved without them, with the value those runs
# trained with.
_ADDED_KEYS = (
  ("objective", "ce"),
  ("awp_gamma", 0.0),
  ("dtype", "float32"),
  ("train_augment", "none"),
  ("nesterov", False),
  ("train_extra", ""),
  (
    "input",
    {
      "pipeline": "memory",
      "workers": 0,
      "image_size": 0,
      "eval_transform": "none",
      "eval_resize": 256,
      "skip_corrupt": False,
    },
  ),
)
# The per-attack keys `config.eval` had before attacks carried their options, with the
# defaults those runs had; `from_saved` folds them into the attack strings.
_OLD_EVAL_ATTACK_KEYS = {
  "pgd_steps": 20,
  "pgd_step_size": 0.01,
  "pgd_restarts": 1,
  "cw_steps": 100,
  "cw_binary_steps": 6,
  "cw_initial_const": 0.1,
  "cw_learning_rate": 0.1,
  "apgd_steps": 100,
  "apgd_targets": 3,
  "square_queries": 1000,
}


def _old_eval_attack_options(ev: dict) -> None:
  """Rewrites, in place, an eval section saved with per-attack keys (`pgd_steps`, ...)
  into `attack_options` with the options those keys gave each attack (the same
  attacks); the PGD step, then given at `eval.eps`, becomes its fraction of eps."""
  old = {k: ev.pop(k, v) for k, v in _OLD_EVAL_ATTACK_KEYS.items()}
  eps = ev.get("eps", 0.1)
  step = old["pgd_step_size"]
  steps, targets, queries = old["apgd_steps"], old["apgd_targets"], old["square_queries"]
  ev["attack_options"] = {
    "pgd": dict(
      num_steps=old["pgd_steps"],
      # the fraction to 12 digits: 0.01 / 0.1 is 0.1, not 0.09999999999999999
      step_size=float(f"{step / eps:.12g}") if eps > 0 else step,
      num_restarts=old["pgd_restarts"],
    ),
    "cw": dict(
      num_steps=old["cw_steps"],
      binary_search_steps=old["cw_binary_steps"],
      initial_const=old["cw_initial_const"],
      learning_rate=old["cw_learning_rate"],
    ),
    "apgd_ce": dict(num_steps=steps),
    "apgd_dlr": dict(num_steps=steps),
    "apgd_t": dict(num_steps=steps, num_target_classes=targets),
    "fab": dict(num_steps=steps),
    "fab_t": dict(num_steps=steps, num_target_classes=targets),
    "square": dict(num_queries=queries),
    "autoattack": dict(num_steps=steps, num_target_classes=targets, num_queries=queries),
  }


# The view-source keys `config.train_attack` had before sources carried their options,
# with the defaults those runs had; `from_saved` folds them into the name.
_OLD_TRAIN_ATTACK_KEYS = {
  "num_steps": 7,
  "step_size_factor": None,
  "num_restarts": 1,
  "replays": 4,
  "hp_type": "HC-D-9",
  "hp_scale": 1.0,
  "policy": ["color", "translation", "cutout"],
  "severity": 3.0,
}
# The options that old `train.make_attack_fn` gave each registered attack (from num_steps,
# step_size_factor as step_size, num_restarts); TRADES' PGD took num_steps and step_size.
_OLD_ATTACK_TRAIN_OPTIONS = {
  "pgd": ("num_steps", "step_size", "num_restarts"),
  "fgsm_rs": ("step_size",),
  "cw": ("num_steps",),
  **{
    n: ("num_steps", "num_restarts")
    for n in ("apgd_ce", "apgd_dlr", "apgd_t", "fab", "fab_t", "autoattack")
  },
}


def _old_train_source(out: dict) -> None:
  """Rewrites, in place, a train_attack section saved with per-source keys into the
  source string with those options; NoisyMix's augmentations (which read
  train_attack.severity and .policy) get their own keys."""
  ta = out["train_attack"]
  old = {k: ta.pop(k, v) for k, v in _OLD_TRAIN_ATTACK_KEYS.items()}
  nm = out.get("noisymix")
  if isinstance(nm, dict):
    nm.setdefault("severity", old["severity"])
    nm.setdefault("policy", old["policy"])
  name = ta.get("name", "pgd")
  values = dict(old, step_size=old["step_size_factor"])
  if name in _OLD_ATTACK_TRAIN_OPTIONS:
    keys = _OLD_ATTACK_TRAIN_OPTIONS[name]
    if name == "pgd" and str(out.get("objective", "")).split("(")[0] == "trades":
      keys = ("num_steps", "step_size")
    options = {k: values[k] for k in keys if values[k] is not None}
  else:
    options = {
      "hard_positives": dict(directions=old["hp_type"], scale=old["hp_scale"]),
      "ace": dict(num_steps=old["num_steps"]),
      "diffaugment": dict(policy=tuple(old["policy"])),
      "augmix": dict(severity=old["severity"]),
      "free": dict(replays=old["replays"], num_steps=old["num_steps"]),
    }.get(name, {})
  try:
    ta["name"] = _views.canonical_source(name, **options)
  except ValueError:
    pass  # validate_config names the key


def _old_objective(out: dict) -> None:
  """Folds the KL weight keys of older runs (trades_beta, mart_lambda) into the
  objective's options, in place."""
  beta = {"trades": out.pop("trades_beta", 6.0), "mart": out.pop("mart_lambda", 6.0)}
  name = out.get("objective", "ce")
  if name in beta:
    out["objective"] = _objectives.canonical_objective(name, beta=beta[name])


# config.input.pipeline's values: in-memory float32 arrays, or the Grain pipeline.
INPUT_PIPELINES = ("memory", "grain")


def noisymix_spec(config):
  """The `NoisyMix` of a validated config, or None when `noisymix.views` is "none".

  Raises:
    ValueError: for a bad value.
  """
  n = config.noisymix
  if n.views == "none":
    return None
  blocks = n.blocks
  if not isinstance(blocks, (tuple, list)) or not all(
    isinstance(b, int) and not isinstance(b, bool) and b >= 0 for b in blocks
  ):
    raise ValueError(
      f"`blocks` must be a tuple of hook indices >= 0 such as (0, 1, 2) (on "
      f"the command line: --config.noisymix.blocks=0,1,2); got {blocks!r}."
    )
  blocks = tuple(blocks)
  return _views.NoisyMix(
    views=n.views,
    jsd_weight=float(n.jsd_weight),
    mixup_alpha=float(n.mixup_alpha),
    blocks=blocks,
    noise=bool(n.noise),
    add=float(n.add),
    mult=float(n.mult),
    sparsity=float(n.sparsity),
    severity=float(n.severity),
    policy=tuple(n.policy),
  ).check()


def default_config() -> ml_collections.ConfigDict:
  """Every training key with its default (a LeNet-5 on the embedded MNIST)."""
  c = ml_collections.ConfigDict()
  c.name = "default"
  c.seed = 0
  # data
  c.dataset = "mnist5k"
  c.data_dir = ""  # TFDS data_dir ("" = TFDS default)
  c.validation_size = 500
  # "flip", "pad_crop_flip" (CIFAR), or with the Grain pipeline "random_resized_crop_flip"
  # (ImageNet, to input.image_size): data.ARRAY_AUGMENTS / data.TRAIN_AUGMENTS
  c.train_augment = "none"
  # How examples reach the train step. "memory": the splits are loaded into RAM as float32
  # (MNIST, CIFAR). "grain": the Grain pipeline (advjax.data): the training split is
  # streamed as uint8 from its source (folder, array_record, TFDS), shuffled from the seed,
  # decoded and augmented in `workers` processes, and its iterator state is checkpointed;
  # the validation slice and the evaluation's test examples are read into memory through
  # `eval_transform` ("resize_center_crop": shorter side to eval_resize, central
  # image_size crop; RobustBench's Res256Crop224 for ImageNet).
  c.input = ml_collections.ConfigDict(
    {
      "pipeline": "memory",
      "workers": 0,
      "image_size": 0,
      "eval_transform": "none",
      "eval_resize": 256,
      "skip_corrupt": False,
    }
  )
  # model
  c.model = "lenet5"
  c.model_kwargs = ml_collections.ConfigDict({"dropout_rate": 0.0})
  # the model's compute dtype: "bfloat16" for mixed precision on accelerators (parameters,
  # optimizer state, BatchNorm statistics, logits, losses and the attacks' images and
  # perturbations stay float32)
  c.dtype = "float32"
  c.init_workdir = ""  # fine-tune: start from the latest checkpoint of this run
  # generated training images appended to the training split (in-memory pipeline): an .npz
  # with "image" [R, H, W, C] in [0, 1] and "label" [R] columns, e.g. the hard-positive set
  # `attacks.generate_hard_positive_set` made once from a base network (Rozsa et al. 2016)
  c.train_extra = ""
  # optimization
  c.num_epochs = 10
  c.batch_size = 128
  c.optimizer = "adam"
  c.learning_rate = 1e-3
  c.lr_schedule = "cosine"
  c.warmup_epochs = 0
  c.momentum = 0.9
  c.nesterov = False  # "sgd": Nesterov momentum
  c.weight_decay = 0.0
  # recipe: standard (alpha = 1), adversarial (fixed alpha), hybrid (adaptive alpha)
  c.recipe = "standard"
  c.alpha = 0.5  # fixed alpha ("adversarial"), initial alpha ("hybrid")
  # the loss of the adversarial views, with its options (train.objective_names()): "ce",
  # "trades(beta=6.0)" (Zhang et al. 2019: CE(x) + beta * KL(p(x) || p(x')), x' from
  # TRADES' PGD on the KL) or "mart(beta=6.0)" (Wang et al. 2020); alpha = 0 gives the
  # paper's loss
  c.objective = "ce"
  c.awp_gamma = 0.0  # AWP (Wu et al. 2020): relative weight perturbation, 0 = off
  c.train_attack = ml_collections.ConfigDict(
    {
      # the view source with its options (train.make_source): an attack of the registry
      # ("pgd(num_steps=7)"; step sizes as fractions of eps, PGD's default 2.5 /
      # num_steps), "hard_positives(directions='HC-D-9', scale=1.05)" (FGS | FGV |
      # HC-D-k | HC-S-k directions, the factor of the minimal perturbation), "ace(num_steps=7)",
      # "diffaugment(policy=('color', 'cutout'))", "augmix(severity=3.0)", or
      # "free(replays=4, num_steps=7)" (Shafahi et al. 2019: m replays of each batch;
      # validated under PGD with num_steps steps)
      "name": "pgd(num_steps=7)",
      "eps": 0.1,
      "maxup": 1,  # MaxUp: train on the worst of m draws per example (1 = off)
      "pass_tau": 0.0,  # PASS filter: views with PASS < tau get no weight (0 = off)
      "pass_iterations": 20,  # ECC iterations of that PASS
      "curriculum": "none",
    }
  )  # "steps": PGD steps grow 1 -> num_steps over eps_warmup_epochs
  # NoisyMix stability terms on the clean branch (Erichson et al. 2022); views "none" = off.
  # views "augmix" with mixup_alpha 0 and noise False is AugMix's JSD loss.
  c.noisymix = ml_collections.ConfigDict(
    {
      "views": "none",
      "jsd_weight": 12.0,
      "mixup_alpha": 1.0,
      "blocks": (0, 1, 2),
      "noise": True,
      "add": 0.5,
      "mult": 0.5,
      "sparsity": 0.65,
      "severity": 3.0,  # views "augmix": the operation severity
      "policy": ("color", "translation", "cutout"),  # views "diffaugment": the policy
    }
  )
  c.eps_schedule = "constant"  # constant | linear | cosine | step (eps/10 -> eps)
  c.eps_warmup_epochs = 0
  # evaluation
  c.eval = default_eval_config()  # see advjax.eval.default_eval_config
  # bookkeeping
  c.keep_checkpoints = 3
  c.checkpoint_every_epochs = 1
  c.progress = True
  # stop a run whose training loss stays within `tolerance` of log K (chance) for `epochs`
  # epochs and at least `min_steps` steps (epochs 0 = off); see train/_stall.py
  c.stall_check = ml_collections.ConfigDict({"epochs": 1.0, "min_steps": 50, "tolerance": 0.01})
  return c


def from_saved(saved: dict) -> dict:
  """A config loaded from a run's config.json, in the current form.

  JSON holds tuples as lists (`validate_config` makes them tuples again). Older
  config.json files hold sequences as comma-separated strings and "unset" as -1;
  those values are read as the tuples and None they mean:
  eval.attacks "fgsm,pgd" -> ("fgsm", "pgd"), eval.corruptions "none" -> () and
  "common" -> ("common",), eval.num_examples -1 -> None,
  train_attack.step_size_factor < 0 -> None, train_attack.policy "color,cutout" ->
  ("color", "cutout"), noisymix.blocks "0,1,2" -> (0, 1, 2). A train_attack section
  with per-source keys (num_steps, step_size_factor, num_restarts, replays, hp_type,
  hp_scale, policy, severity) gets the source string with the options those keys gave
  it (name "pgd", num_steps 7 -> "pgd(num_steps=7)"; "hard_positives" with hp_type
  "HC-D-3" -> "hard_positives(directions='HC-D-3')"), and noisymix its own severity and
  policy (which it read from train_attack). An eval section with the
  per-attack keys of older runs (`pgd_steps`, `pgd_step_size` at `eval.eps`,
  `pgd_restarts`, `cw_*`, `apgd_steps`, `apgd_targets`, `square_queries`) gets
  `attack_options` with the options those keys gave each attack instead: pgd_steps 20
  and pgd_step_size 0.01 at eps 0.1 -> attack_options.pgd {"num_steps": 20,
  "step_size": 0.1, "num_restarts": 1}. The KL weights trades_beta and mart_lambda
  become the objective's option: objective "trades" with trades_beta 3 -> "trades(beta=3.0)".
  """
  out = json.loads(json.dumps(saved))  # a deep copy
  for key, value in _ADDED_KEYS:  # runs saved before these keys existed trained with them
    if isinstance(out, dict):
      out.setdefault(key, json.loads(json.dumps(value)))

  def names(text):
    return [p.strip() for p in text.split(",") if p.strip()]

  ev, ta, nm = (
    out.get(k) if isinstance(out.get(k), dict) else {} for k in ("eval", "train_attack", "noisymix")
  )
  if isinstance(ev.get("attacks"), str):
    ev["attacks"] = names(ev["attacks"])
  if isinstance(out, dict) and ("trades_beta" in out or "mart_lambda" in out):
    _old_objective(out)
  if ev and "attack_options" not in ev:  # saved before attacks carried their options
    _old_eval_attack_options(ev)
  if isinstance(ev.get("corruptions"), str):
    ev["corruptions"] = [] if ev["corruptions"] == "none" else names(ev["corruptions"])
  if isinstance(ev.get("num_examples"), int) and ev["num_examples"] < 0:
    ev["num_examples"] = None
  if isinstance(ta.get("step_size_factor"), (int, float)) and ta["step_size_factor"] < 0:
    ta["step_size_factor"] = None
  if isinstance(ta.get("policy"), str):
    ta["policy"] = names(ta["policy"])
  if ta and any(k in ta for k in _OLD_TRAIN_ATTACK_KEYS):  # saved before sources had options
    _old_train_source(out)
  if isinstance(nm.get("blocks"), str):
    try:
      nm["blocks"] = [int(b) for b in names(nm["blocks"])]
    except ValueError:
      pass  # validate_config names the key
  return out


# Sections whose keys are names the registry or the model checks, not this schema.
_FREE_KEYS = ("model_kwargs", "attack_options")


def _check_keys(config, reference, prefix=""):
  for key in config.keys():
    if key not in reference:
      raise ValueError(
        f"Unknown config key {prefix + key!r}; known keys: {sorted(reference.keys())}."
      )
    if isinstance(reference[key], ml_collections.ConfigDict) and key not in _FREE_KEYS:
      _check_keys(config[key], reference[key], prefix + key + ".")


def model_kwargs(config) -> dict:
  """config.model_kwargs as keyword arguments of config.model: the default
  dropout_rate 0.0 (off) is left out for a model without dropout."""
  kwargs = dict(config.model_kwargs)
  if kwargs.get("dropout_rate") == 0.0 and "dropout_rate" not in models.model_attributes(
    config.model
  ):
    del kwargs["dropout_rate"]
  return kwargs


def _check_input(full) -> None:
  """Checks config.input and the augmentation it allows."""
  inp = full.input
  if inp.pipeline not in INPUT_PIPELINES:
    raise ValueError(
      f"config.input.pipeline: unknown value {inp.pipeline!r}; expected one of "
      f"{list(INPUT_PIPELINES)}."
    )
  grain = inp.pipeline == "grain"
  augments = data.TRAIN_AUGMENTS if grain else data.ARRAY_AUGMENTS
  if full.train_augment not in augments:
    more = (
      " ('random_resized_crop_flip' needs config.input.pipeline='grain')"
      if full.train_augment in data.TRAIN_AUGMENTS
      else ""
    )
    raise ValueError(
      f"config.train_augment: unknown value {full.train_augment!r}; expected "
      f"one of {sorted(augments)}{more}."
    )
  for key in ("workers", "image_size", "eval_resize"):
    value = inp[key]
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
      raise ValueError(f"config.input.{key} must be an integer >= 0; got {value!r}.")
  if inp.eval_transform not in data.EVAL_TRANSFORMS:
    raise ValueError(
      f"config.input.eval_transform: unknown value {inp.eval_transform!r}; "
      f"expected one of {list(data.EVAL_TRANSFORMS)}."
    )
  if not grain and (
    inp.eval_transform != "none" or inp.workers or full.dataset.startswith("array_record:")
  ):
    raise ValueError(
      "config.input.eval_transform, config.input.workers and 'array_record:' "
      "datasets need config.input.pipeline='grain'."
    )
  sized = full.train_augment == "random_resized_crop_flip" or (
    inp.eval_transform == "resize_center_crop"
  )
  if sized and not inp.image_size:
    raise ValueError(
      "config.input.image_size (the side of the crops, e.g. 224) is required "
      "with train_augment='random_resized_crop_flip' or "
      "input.eval_transform='resize_center_crop'."
    )
  if inp.eval_transform == "resize_center_crop" and inp.eval_resize < inp.image_size:
    raise ValueError(
      f"config.input.eval_resize ({inp.eval_resize}) must be >= "
      f"config.input.image_size ({inp.image_size})."
    )


def validate_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Checks keys and values; returns a copy with defaults for missing keys.

  Raises:
    ValueError: for an unknown key or a bad value, naming the key.
  """
  ref = default_config()
  _check_keys(config, ref)

  def names(key, value):
    _, what, choices = next(t for t in _NAME_TUPLES if t[0] == key)
    return _validate.parse_names(
      value, f"config.{key}", choices(), what, distinct=key != "noisymix.policy"
    )

  given = config.to_dict() if hasattr(config, "to_dict") else dict(config)
  if "attacks" in (given.get("eval") or {}):  # before `update`, which raises for a string
    parse_attack_specs(given["eval"]["attacks"])
  for key, _, _ in _NAME_TUPLES:  # before `update`, which raises a TypeError for a string
    group, leaf = key.split(".")
    if leaf in (given.get(group) or {}):
      names(key, given[group][leaf])
  full = default_config()
  try:
    full.update(given)
  except TypeError as err:
    raise ValueError(f"config: {err}") from None

  def choice(key, value, choices):
    if value not in choices:
      raise ValueError(f"config.{key}: unknown value {value!r}; expected one of {sorted(choices)}.")

  choice("model", full.model, models.MODELS)
  choice("recipe", full.recipe, _step.RECIPES)
  try:  # the objective's own options, checked by its builder
    _objectives.build_objective(full.objective)
    full.objective = _objectives.canonical_objective(full.objective)
  except ValueError as err:
    raise ValueError(f"config.objective: {err}") from None
  objective = _objectives.build_objective(full.objective)
  try:  # the source's own options, checked by the registry and the source's builder
    _views.check_source(full.train_attack.name)
    full.train_attack.name = _views.canonical_source(full.train_attack.name)
  except ValueError as err:
    raise ValueError(f"config.train_attack.name: {err}") from None
  source = _views.parse_source(full.train_attack.name)[0]
  choice("eps_schedule", full.eps_schedule, _schedules.EPS_SCHEDULES)
  choice("lr_schedule", full.lr_schedule, _schedules.LR_SCHEDULES)
  choice("optimizer", full.optimizer, _schedules.OPTIMIZERS)
  choice("dtype", full.dtype, COMPUTE_DTYPES)
  _check_input(full)
  if "dtype" in full.model_kwargs:
    raise ValueError(
      "config.model_kwargs.dtype: set the compute dtype with config.dtype "
      f"(one of {list(COMPUTE_DTYPES)}), not in model_kwargs."
    )
  takes = models.model_attributes(full.model)
  unknown = sorted(set(model_kwargs(full)) - set(takes))
  if unknown:
    raise ValueError(
      f"config.model_kwargs.{unknown[0]}: model {full.model!r} has no "
      f"attribute {unknown[0]!r}; it takes {list(takes)}."
    )
  for key in (
    "train_attack.eps",
    "eval.eps",
    "learning_rate",
    "weight_decay",
    "eps_warmup_epochs",
    "warmup_epochs",
    "awp_gamma",
  ):
    node, leaf = (full, key) if "." not in key else (full[key.split(".")[0]], key.split(".")[1])
    if node[leaf] < 0:
      raise ValueError(f"config.{key} must be >= 0; got {node[leaf]}.")
  for key in ("num_epochs", "batch_size", "keep_checkpoints", "checkpoint_every_epochs"):
    if int(full[key]) < 1:
      raise ValueError(f"config.{key} must be >= 1; got {full[key]}.")
  if source == "free" and full.recipe != "adversarial":
    raise ValueError(
      "config.train_attack.name='free' (free adversarial training) trains on "
      "adversarial examples only: set config.recipe='adversarial'."
    )
  ta = full.train_attack
  if full.objective != "ce" and full.recipe == "standard":
    raise ValueError(
      f"config.objective={full.objective!r} trains on adversarial examples: set "
      "config.recipe='adversarial' (with config.alpha=0.0 the loss is the "
      "paper's) or 'hybrid'."
    )
  if objective.attack is not None and full.recipe != "standard":
    try:  # the objective's own attack (TRADES' PGD) is built from the training attack
      if source in _views.VIEW_SOURCES:
        raise ValueError(f"its views come from an attack of its own, not {source!r}")
      _step.make_attack_fn(ta.name, objective=full.objective)
    except ValueError as err:
      raise ValueError(
        f"config.objective={full.objective!r} with config.train_attack.name={ta.name!r}: {err}"
      ) from None
  if (
    full.recipe != "standard"
    and source == "free"
    and (full.objective != "ce" or full.awp_gamma > 0)
  ):
    raise ValueError(
      "config.train_attack.name='free' (free adversarial training) has a step "
      "of its own with the CE loss: it takes neither config.objective="
      f"{full.objective!r} nor config.awp_gamma > 0."
    )
  choice("train_attack.curriculum", ta.curriculum, CURRICULA)
  if ta.curriculum == "steps" and source != "pgd":
    raise ValueError(
      "config.train_attack.curriculum='steps' grows the PGD steps: it needs "
      f"config.train_attack.name='pgd'; got {ta.name!r}."
    )
  if int(ta.maxup) < 1:
    raise ValueError(f"config.train_attack.maxup must be >= 1; got {ta.maxup}.")
  if not 0.0 <= ta.pass_tau <= 1.0:
    raise ValueError(f"config.train_attack.pass_tau must be in [0, 1]; got {ta.pass_tau}.")
  choice("noisymix.views", full.noisymix.views, ("none",) + _views.NOISYMIX_VIEWS)
  if full.noisymix.views != "none":
    try:
      noisymix_spec(full)
    except ValueError as err:
      raise ValueError(f"config.noisymix: {err}") from None
  if full.eval.hard_positive_set and not os.path.exists(full.eval.hard_positive_set):
    raise ValueError(f"config.eval.hard_positive_set: no file {full.eval.hard_positive_set!r}.")
  if full.train_extra:
    if not os.path.isfile(full.train_extra):
      raise ValueError(
        f"config.train_extra: no file {full.train_extra!r}; expected an .npz "
        "with 'image' [R, H, W, C] and 'label' [R] columns."
      )
    if full.input.pipeline != "memory":
      raise ValueError(
        "config.train_extra appends images to the in-memory training split: "
        "it needs config.input.pipeline='memory'; got "
        f"{full.input.pipeline!r}."
      )
  if full.init_workdir and not os.path.exists(os.path.join(full.init_workdir, "config.json")):
    raise ValueError(
      f"config.init_workdir: {full.init_workdir!r} is not an advjax run (no config.json)."
    )
  _stall.check_stall_config(full.stall_check)
  if not 0.0 <= full.alpha <= 1.0:
    raise ValueError(f"config.alpha must be in [0, 1]; got {full.alpha}.")
  for key, _, _ in _NAME_TUPLES:
    group, leaf = key.split(".")
    full[group][leaf] = names(key, full[group][leaf])
  n = full.eval.num_examples
  if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
    raise ValueError(
      f"config.eval.num_examples must be None (the whole test set) or an integer >= 1; got {n!r}."
    )
  choice("eval.corruption_tables", full.eval.corruption_tables, augment.CORRUPTION_TABLES)
  full.eval.attacks = tuple(parse_attack_specs(full.eval.attacks).values())
  check_attack_options(full.eval.attack_options)
  return full
