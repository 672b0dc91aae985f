"""The robust-training experiments (a)-(e): one list of rows each, shared by the driver
(`experiments/reproduce.py`) and the RESULTS.md generator (`experiments/make_results.py`).

Every row is a config built from `base_config` plus overrides; a run lives in
`<root>/<experiment>/<row>/seed_<seed>`. On "mnist" (the default) runs are LeNet-5 on the
embedded real MNIST (mnist5k: 3,500 train / 500 validation / 1,000 test images),
evaluated at Linf eps 0.1 (PGD-20 with a random start, step 0.01); on "cifar10" (TFDS
data the user prepared) ResNet-18 at eps 8/255.
"""

from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

import ml_collections

from advjax import train
from advjax.train import default_config

EPOCHS = 10  # every from-scratch run (free AT: EPOCHS / m passes, see row "free")
FINETUNE_EPOCHS = 2  # (a): fine-tuning of the base LeNets
TRAIN_EPS = 0.15  # train at 1.5x the evaluation eps (0.1), as mnist_hybrid does


class Row(NamedTuple):
  """One row of a results table: a name, how to build its config, and what it needs."""

  name: str
  label: str
  config: Callable[[int], ml_collections.ConfigDict]
  init_from: Optional[str] = None  # (a): the row whose checkpoint it fine-tunes
  baseline: Optional[str] = None  # (c): the row whose corruption errors define mCE
  # (a) as published: (hard-positive type, factor) of the images generated once from the
  # training split by init_from's network and appended to the training split
  generate: Optional[Tuple[str, float]] = None


class Supplement(NamedTuple):
  """A measurement of a whole experiment beside its per-seed runs: one command writes a
  markdown file into `<root>/<experiment>/<filename>` once, and RESULTS.md shows it under
  the experiment's table (see `supplement_path`, `supplement_command`)."""

  title: str
  filename: str
  module: str  # run as `python -m <module> --output FILE` from the repo root
  datasets: tuple = ("mnist",)  # the datasets the module measures


class Experiment(NamedTuple):
  key: str
  title: str
  claim: str  # the seed paper's claim, as tested here
  rows: List[Row]
  seeds: tuple = (0, 1)
  ensemble_of: tuple = ()  # rows whose softmax average is evaluated as one more row
  prepare: Optional[Callable] = None  # (root, log, dataset) -> None, once before the rows
  eval_overrides: Optional[Callable] = None  # root -> dict of eval keys for every row
  note: str = ""  # how to read the table (printed under it in RESULTS.md)
  supplement: Optional[Supplement] = None  # run once after the rows by the driver


# The shared setup of each dataset: MNIST (embedded, LeNet-5) and CIFAR-10 (TFDS data the
# user prepared, ResNet-18 with the usual SGD recipe and eps 8/255).
DATASETS = {
  "mnist": dict(
    dataset="mnist5k",
    model="lenet5",
    epochs=EPOCHS,
    optimizer="adam",
    learning_rate=2e-3,
    weight_decay_reg=5e-4,
    train_eps=TRAIN_EPS,
    eval_eps=0.1,
    pgd_step_size=0.1,  # of eps: 0.01 at 0.1
    eps_grid=(0.1, 0.2),
    validation_size=500,
  ),
  "cifar10": dict(
    dataset="tfds:cifar10",
    model="resnet18",
    epochs=30,
    optimizer="sgd",
    learning_rate=0.1,
    weight_decay_reg=5e-4,
    train_eps=8 / 255,
    eval_eps=8 / 255,
    pgd_step_size=0.25,  # of eps: 2/255 at 8/255
    eps_grid=(8 / 255, 16 / 255),
    validation_size=1000,
  ),
}


def base_config(name: str, seed: int, dataset: str = "mnist") -> ml_collections.ConfigDict:
  """The shared setup of `dataset` ("mnist": LeNet-5, Adam 2e-3 (cosine), batch 128,
  EPOCHS epochs, train eps 0.15, eval eps 0.1; "cifar10": ResNet-18, SGD 0.1, 30 epochs,
  eps 8/255)."""
  if dataset not in DATASETS:
    raise ValueError(f"Unknown dataset {dataset!r}; expected one of {sorted(DATASETS)}.")
  d = DATASETS[dataset]
  c = default_config()
  c.name = name
  c.seed = seed
  c.dataset, c.model, c.validation_size = d["dataset"], d["model"], d["validation_size"]
  c.num_epochs = d["epochs"]
  c.optimizer, c.learning_rate = d["optimizer"], d["learning_rate"]
  c.progress = False
  c.train_attack.eps = d["train_eps"]
  c.train_attack.name = "pgd(num_steps=7)"
  c.eval.eps = d["eval_eps"]
  c.eval.attack_options.pgd.step_size = d["pgd_step_size"]
  c.eval.eps_grid = d["eps_grid"]
  c.eval.corruption_tables = "cifar10" if dataset == "cifar10" else "imagenet"
  c.eval.attacks = ("fgsm", "pgd")
  c.eval.masking_examples = 100
  c.eval.attack_options.square.num_queries = 500
  return c


def _standard(name, **kw):
  def build(seed, dataset="mnist"):
    c = base_config(name, seed, dataset)
    c.recipe = "standard"
    c.update_from_flattened_dict(kw)
    return c

  return build


def _adversarial(
  name,
  recipe="adversarial",
  alpha=0.0,
  attack="pgd(num_steps=7)",
  epochs_divisor=1,
  warmup_fraction=0.0,
  **kw,
):
  def build(seed, dataset="mnist"):
    c = base_config(name, seed, dataset)
    c.recipe = recipe
    c.alpha = alpha
    c.train_attack.name = attack
    c.num_epochs = -(-c.num_epochs // epochs_divisor)
    c.eps_warmup_epochs = int(c.num_epochs * warmup_fraction)
    c.update_from_flattened_dict(kw)
    return c

  return build


def _hybrid(name, **kw):
  return _adversarial(
    name, recipe="hybrid", alpha=0.5, eps_schedule="linear", warmup_fraction=1 / 3, **kw
  )


def _pgd_at(name, **kw):
  """Plain PGD-AT (alpha = 0) with eps grown linearly from eps/10 over the first third
  of training, the hybrid's ramp. At full eps from the first step (Adam 2e-3), one seed
  in three fell to the uniform output (loss log 10) in its first epoch and never left it."""
  return _adversarial(name, eps_schedule="linear", warmup_fraction=1 / 3, **kw)


# AutoAttack with the eval defaults (APGD-CE, APGD-T and FAB-T with 3 target classes, Square
# with 1,000 queries), cheaper than the standard version's 9 targets and 5,000 queries.
# CW-L2 with the evaluation's default budget, which breaks every point of these models.
_B_EVAL = {"eval.attacks": ("fgsm", "pgd", "cw", "autoattack")}
# (b) seed 002: plain PGD-AT vs the hybrid, same epochs, attack (PGD-7, eps 0.15) and eps
# ramp; the recipes differ in alpha (0 vs adaptive).
_B = Experiment(
  key="b",
  title="(b) PGD adversarial training vs the hybrid recipe",
  claim=(
    "the hybrid (adaptive alpha = acc_adv / (acc_adv + acc_clean), eps grown "
    "from eps/10) keeps clean accuracy closer to standard training than plain "
    "PGD-AT at comparable robustness and the same cost"
  ),
  rows=[
    Row("pgd_at", "PGD-AT (alpha = 0, linear eps)", _pgd_at("pgd_at", **_B_EVAL)),
    Row("hybrid", "hybrid (adaptive alpha, linear eps)", _hybrid("hybrid", **_B_EVAL)),
    Row("trades", "TRADES (beta 6)", _pgd_at("trades", objective="trades", **_B_EVAL)),
    Row("mart", "MART (lambda 6)", _pgd_at("mart", objective="mart", **_B_EVAL)),
    Row("awp", "PGD-AT + AWP (gamma 5e-3)", _pgd_at("awp", awp_gamma=5e-3, **_B_EVAL)),
  ],
  seeds=(0, 1, 2),
  note=(
    "Every row grows eps linearly from eps/10 to 0.15 over the first 3 of 10 epochs "
    "and finds its training examples with PGD-7 (TRADES: its PGD on the KL term): "
    "plain PGD-AT at full eps from the first step stalled at chance on one seed in "
    "three (the training stops with an error when the loss stays at log 10 for an "
    "epoch: `stall_check` in the config). TRADES, MART and AWP (Zhang et al. 2019, "
    "Wang et al. 2020, Wu et al. 2020; the papers' default weights) are the field's "
    "baselines beside the two recipes the claim compares. AutoAttack runs with 3 "
    "target classes and 1,000 Square queries (the standard version: 9 and 5,000)."
  ),
)

# (d) seed 003: classical regularization vs adversarial training vs both.
_REG = {
  "weight_decay": 5e-4,
  "model_kwargs.dropout_rate": 0.5,
}  # ResNet-18: dropout before the head
_D = Experiment(
  key="d",
  title="(d) weight decay and dropout vs adversarial training vs both",
  claim=(
    "adversarial training buys robustness that weight decay and dropout do "
    "not; combining them does not cost robustness"
  ),
  rows=[
    Row("baseline", "standard", _standard("baseline")),
    Row("wd_dropout", "weight decay 5e-4 + dropout 0.5", _standard("wd_dropout", **_REG)),
    Row("at", "adversarial training (PGD-7, alpha 0.5)", _adversarial("at", alpha=0.5)),
    Row(
      "at_wd_dropout",
      "adversarial training + weight decay + dropout",
      _adversarial("at_wd_dropout", alpha=0.5, **_REG),
    ),
  ],
)

# (e) fast recipes: FGSM with random start (Wong et al. 2020: a cyclic learning rate
# peaking at 2/5 of training, Adam 5e-3 on MNIST, and few epochs, here half of PGD-AT's)
# and free AT (Shafahi et al. 2019, m = 4 replays, EPOCHS / m passes) vs PGD-7 AT, all
# alpha = 0. Compared by time to a PGD accuracy (benchmarks/train_recipes.py).
_FREE_M = 4
_FGSM_RS_PEAK_LR = 5e-3
_E = Experiment(
  key="e",
  title="(e) fast adversarial training: FGSM-RS and free AT vs PGD-AT",
  claim=(
    "FGSM-RS and free AT reach most of PGD-AT's robust accuracy at a fraction "
    "of its training time (moonshot: <= 1.3x clean time, >= 90% of PGD-AT's "
    "PGD accuracy)"
  ),
  rows=[
    Row("clean", "standard (time reference)", _standard("clean")),
    Row(
      "fgsm_rs",
      f"FGSM-RS (step 1.25 eps, cyclic lr, {-(-EPOCHS // 2)} epochs)",
      _adversarial(
        "fgsm_rs",
        attack="fgsm_rs",
        epochs_divisor=2,
        lr_schedule="cyclic",
        learning_rate=_FGSM_RS_PEAK_LR,
      ),
    ),
    Row(
      "free",
      f"free AT (m = {_FREE_M}, {-(-EPOCHS // _FREE_M)} passes)",
      _adversarial("free", attack=f"free(replays={_FREE_M})", epochs_divisor=_FREE_M),
    ),
    Row("pgd_at", "PGD-7 AT (linear eps, as in (b))", _pgd_at("pgd_at")),
  ],
  seeds=(0, 1, 2),
  note=(
    "Train time is `report.train.time_s`, the sum of the epoch times, which includes "
    "the first step's compilation; the time without compilation subtracts the first "
    "epoch's excess over the median later epoch (`metrics.jsonl`), and the verdict uses "
    "it. The runs were made one after another by the driver. The time to a robust "
    "model, Wong et al.'s measure, is the table under this one: all four recipes back "
    "to back in one process, compilation measured and subtracted, every epoch's "
    "checkpoint evaluated with PGD-20."
  ),
  supplement=Supplement(
    title="Time to accuracy", filename="time_to_accuracy.md", module="benchmarks.train_recipes"
  ),
)


# (a) seed 004, Rozsa et al. 2016 Table 1: fine-tuning base LeNets on clean images
# ("basic") or on clean plus generated images: minimal adversarials along FGS / FGV / 9
# hot-cold directions (HC-D-9), and hard positives 1.05x beyond the minimal (HC-D-9-1.05).
# Two protocols: as published, the images are generated once from the base network's
# training images and appended to the training split ("offline_*" rows, the paper's);
# the online variant generates them every step from the network being fine-tuned
# (alpha 0.5 clean + 0.5 generated). Tested on the MNIST test set and on an
# adversarial/hard-positive set made from the test images by two independently trained
# LeNets (seeds 100, 101), never the network under test.
HELDOUT_SEEDS = (100, 101)
HELDOUT_IMAGES = 300
OFFLINE_MAX_IMAGES = None  # training images the offline sets are generated from (None: all)


def _finetune(name, hp_type=None, hp_scale=1.0):
  """Fine-tuning of the base row: clean ("basic", and the offline rows, whose generated
  images reach the training split through config.train_extra), or online generation."""

  def build(seed, dataset="mnist"):
    c = base_config(name, seed, dataset)
    c.num_epochs = FINETUNE_EPOCHS
    c.learning_rate = c.learning_rate / 4
    if hp_type is None:
      c.recipe = "standard"
    else:
      c.recipe, c.alpha = "adversarial", 0.5
      c.train_attack.name = train.canonical_source(
        "hard_positives", directions=hp_type, scale=hp_scale
      )
    return c

  return build


def heldout_path(root: str) -> str:
  return f"{root}/a/heldout_hard_positives.npz"


def generated_path(root: str, experiment: str, row: str, seed: int) -> str:
  return f"{root}/{experiment}/generated/{row}_seed_{seed}.npz"


def generate_offline_set(root: str, experiment: str, row: Row, seed: int, log=print) -> str:
  """The images of `row.generate`, made once from the training split by the network of
  `row.init_from` (same seed) and saved (atomically) for config.train_extra; an existing
  file is reused. Returns its path."""
  import os  # pylint: disable=import-outside-toplevel
  from advjax import attacks, models, train  # pylint: disable=import-outside-toplevel

  path = generated_path(root, experiment, row.name, seed)
  if os.path.exists(path):
    return path
  hp_type, factor = row.generate
  base, state = train.load_run(run_dir(root, experiment, row.init_from, seed))
  ds = base.splits["train"].take(OFFLINE_MAX_IMAGES)
  cols = attacks.generate_hard_positive_set(
    models.make_logits_fn(base.model, state.variables()),
    ds.images,
    ds.labels,
    tau=0.0,
    types=(hp_type,),
    scales=(factor,),
  )
  attacks.save_hard_positive_set(path, cols)
  log(
    f"[{experiment}] {row.name} seed {seed}: {len(cols['label'])} {hp_type} x{factor:g} "
    f"images generated from {len(ds)} training images by {row.init_from}"
  )
  return path


def _prepare_heldout(root, log, dataset="mnist"):
  """Writes the held-out set once: FGS, FGV, HC-D-9 at 1.0 and 1.05 from two networks
  trained with other seeds on the same training images (Adam, the base row's epochs)."""
  import os  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  from advjax import attacks, data, models, train  # pylint: disable=import-outside-toplevel

  path = heldout_path(root)
  if os.path.exists(path):
    return
  c = base_config("heldout", 0, dataset)
  splits = data.load_splits(c.dataset, validation_size=c.validation_size)
  test = splits["test"].take(HELDOUT_IMAGES)
  parts = []
  for s in HELDOUT_SEEDS:
    model = models.get_model(c.model, num_classes=splits["train"].num_classes)
    variables = train.fit(
      model,
      splits["train"],
      epochs=c.num_epochs,
      seed=s,
      learning_rate=2e-3 if dataset == "mnist" else 1e-3,
      batch_size=128,
    )
    parts.append(
      attacks.generate_hard_positive_set(
        models.make_logits_fn(model, variables),
        test.images,
        test.labels,
        tau=0.0,
        types=("FGS", "FGV", "HC-D-9"),
        scales=(1.0, 1.05),
      )
    )
    log(f"[a] held-out set: {len(parts[-1]['label'])} rows from the LeNet of seed {s}")
  cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
  attacks.save_hard_positive_set(path, cols)


# (row suffix, label, hard-positive type, factor) of the generated-image rows of (a)
_A_GENERATED = (
  ("fgs", "FGS minimal adversarials", "FGS", 1.0),
  ("fgv", "FGV minimal adversarials", "FGV", 1.0),
  ("hc_d_9", "HC-D-9 minimal adversarials", "HC-D-9", 1.0),
  ("hc_d_9_105", "HC-D-9-1.05 hard positives", "HC-D-9", 1.05),
)

_A = Experiment(
  key="a",
  title="(a) fine-tuning with adversarial images and hard positives (Rozsa et al.)",
  claim=(
    "fine-tuning on hot/cold hard positives (HC-D-9, HC-D-9-1.05) lowers the error on "
    "adversarial images from other networks more than FGS/FGV images or basic "
    "fine-tuning, without raising the clean test error"
  ),
  rows=[
    Row("base", f"base LeNet ({EPOCHS} epochs)", _standard("base")),
    Row("basic", "basic fine-tuning (clean)", _finetune("basic"), init_from="base"),
  ]
  + [
    Row(
      f"offline_{n}",
      f"{label}, generated once (as published)",
      _finetune(f"offline_{n}"),
      init_from="base",
      generate=(t, f),
    )
    for n, label, t, f in _A_GENERATED
  ]
  + [
    Row(n, f"{label}, generated online", _finetune(n, t, f), init_from="base")
    for n, label, t, f in _A_GENERATED
  ],
  prepare=_prepare_heldout,
  # two seeds left HC-D-9's held-out error (0.027 ± 0.007) within two stds of FGV's
  # (0.042 ± 0.010); a third seed decides
  seeds=(0, 1, 2),
  note=(
    "Two protocols. As published (rows 'generated once'): the images are generated "
    "once, from the training images, by the base network, and fine-tuning sees the "
    "training split plus them. Online (rows 'generated online', our variant): they are "
    "made every step from the network being fine-tuned, and the loss is 0.5 clean + "
    "0.5 generated. Both fine-tune briefly (2 epochs at a quarter of the learning "
    "rate), and LeNet-5 is trained on 3,500 MNIST images, not 60,000. The held-out set "
    "is generated from the first 300 test images by two LeNets of other seeds (FGS, "
    "FGV, HC-D-9 at 1.0x and 1.05x the minimal perturbation). Hot/cold makes up to "
    "nine images per training image where FGS and FGV make one, so the HC rows "
    "fine-tune on about eight times as many generated images (column 'images generated "
    "once'), and so for more steps in their 2 epochs; the comparison "
    "does not hold the count equal."
  ),
  eval_overrides=lambda root: {"hard_positive_set": heldout_path(root)},
)


# (c) seed 001: baseline vs AugMix (JSD) vs NoisyMix on the corruption suite and FGSM;
# plus a DiffAugment run and the ensemble (average softmax) of the augmented models.
def _corruption_eval(c):
  c.eval.attacks = ("fgsm",)
  c.eval.corruptions = ("common",)
  c.eval.corruption_examples = 500
  c.eval.eps_grid = tuple(e for e in c.eval.eps_grid if e <= c.eval.eps)
  c.eval.masking_checks = False
  return c


def _augmented(name, recipe="standard", **kw):
  def build(seed, dataset="mnist"):
    c = base_config(name, seed, dataset)
    c.recipe = recipe
    c.update_from_flattened_dict(kw)
    return _corruption_eval(c)

  return build


_C = Experiment(
  key="c",
  title="(c) AugMix and NoisyMix vs the baseline on common corruptions",
  claim=(
    "NoisyMix gives the highest corruption accuracy (lowest mCE), AugMix second, "
    "and both improve FGSM accuracy over the baseline"
  ),
  rows=[
    Row("baseline", "standard", _augmented("baseline")),
    Row(
      "augmix",
      "AugMix + JSD (x12)",
      _augmented(
        "augmix",
        **{"noisymix.views": "augmix", "noisymix.mixup_alpha": 0.0, "noisymix.noise": False},
      ),
      baseline="baseline",
    ),
    Row(
      "noisymix",
      "NoisyMix (AugMix views, manifold mixup, sparse noise, JSD x12)",
      _augmented("noisymix", **{"noisymix.views": "augmix"}),
      baseline="baseline",
    ),
    Row(
      "diffaugment",
      "DiffAugment views (alpha 0.5)",
      _augmented(
        "diffaugment", recipe="adversarial", alpha=0.5, **{"train_attack.name": "diffaugment"}
      ),
      baseline="baseline",
    ),
  ],
  ensemble_of=("augmix", "noisymix", "diffaugment"),
)

EXPERIMENTS: Dict[str, Experiment] = {e.key: e for e in (_A, _B, _C, _D, _E)}


def evaluate_ensemble(root: str, exp: Experiment, seed: int, log=print) -> None:
  """Evaluates the average softmax of `exp.ensemble_of` (one seed) as row "ensemble"."""
  import os  # pylint: disable=import-outside-toplevel
  from experiments.ensemble import evaluate_ensemble as run  # pylint: disable=import-outside-toplevel

  out = run_dir(root, exp.key, "ensemble", seed)
  if os.path.exists(os.path.join(out, "report.json")):
    log(f"[{exp.key}] ensemble seed {seed}: done, skipped")
    return
  members = [run_dir(root, exp.key, r, seed) for r in exp.ensemble_of]
  overrides = {}
  baselines = {r.baseline for r in exp.rows if r.name in exp.ensemble_of and r.baseline}
  if baselines:  # the members' mCE baseline is the ensemble's too
    overrides["baseline_workdir"] = run_dir(root, exp.key, baselines.pop(), seed)
  report = run(members, out, name=f"ensemble_{seed}", eval_overrides=overrides, progress=False)
  log(f"[{exp.key}] ensemble seed {seed}: clean {report['clean_accuracy']:.4f}")


def run_dir(root: str, experiment: str, row: str, seed: int) -> str:
  return f"{root}/{experiment}/{row}/seed_{seed}"


def epoch_times(workdir: str) -> List[float]:
  """`epoch_time_s` of each epoch in the run's metrics.jsonl, in order; [] without it."""
  import json  # pylint: disable=import-outside-toplevel
  import os  # pylint: disable=import-outside-toplevel

  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return []
  with open(path, encoding="utf-8") as f:
    recs = [json.loads(line) for line in f if line.strip()]
  return [
    float(r["epoch_time_s"])
    for r in recs
    if r.get("kind") == "val" and isinstance(r.get("epoch_time_s"), (int, float))
  ]


def supplement_path(root: str, exp: Experiment) -> str:
  """Where `exp.supplement` writes its markdown."""
  return f"{root}/{exp.key}/{exp.supplement.filename}"


def supplement_command(root: str, exp: Experiment) -> str:
  """The shell command that (re)measures `exp.supplement`, from the repository root."""
  return f"python -m {exp.supplement.module} --output {supplement_path(root, exp)}"


def measure_supplement(root: str, exp: Experiment, dataset: str, log=print) -> None:
  """Runs `exp.supplement`'s module once (in its own process, as its command does) unless
  its file exists; logs and does nothing for a dataset the module does not measure.

  Raises:
    subprocess.CalledProcessError: the module failed (its file is not written then).
  """
  import os  # pylint: disable=import-outside-toplevel
  import subprocess  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel

  sup, path = exp.supplement, supplement_path(root, exp)
  if dataset not in sup.datasets:
    log(f"[{exp.key}] {sup.title}: measured on {', '.join(sup.datasets)} only, skipped")
    return
  if os.path.exists(path):
    log(f"[{exp.key}] {sup.title}: done, skipped")
    return
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env = dict(
    os.environ, PYTHONPATH=os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH")) if p)
  )
  os.makedirs(os.path.dirname(path), exist_ok=True)
  log(f"[{exp.key}] {sup.title}: {supplement_command(root, exp)}")
  subprocess.run(
    [sys.executable, "-m", sup.module, "--output", os.path.abspath(path)],
    check=True,
    cwd=repo,
    env=env,
  )
