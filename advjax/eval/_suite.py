"""`evaluate(logits_fn, dataset, config)`: the evaluation a reviewer trusts.

Clean accuracy; robust accuracy, confidence and median perturbation norms per
eps-bounded attack and its robustness gap; success rate, minimal L2 norms and
accuracy at L2 thresholds per minimum-norm attack; calibration (ECE,
histograms); corruption accuracy and mCE; ImageNet-P style flip rates;
gradient-masking checks (always run).

Every random draw has a key derived from what it is (the attack's name and eps,
the corruption's name), never from its position in a list, so an attack's result
does not depend on which others run beside it.
"""

import os
import time
import zlib
from typing import Callable, Dict, Optional

import jax
import jax.numpy as jnp
import ml_collections
from ml_collections import config_dict
import numpy as np
from tqdm.auto import tqdm

from advjax import _validate
from advjax import attacks as A
from advjax import metrics
from advjax import models
from advjax.data import ArrayDataset, iterate_eval
from advjax.eval import _calibration, _corruption, _flip, _masking

ATTACKS = A.ATTACK_NAMES  # the built-in attacks; any registered one runs in the battery


def _name_key(key: jax.Array, *parts) -> jax.Array:
  """`key` folded with a stable hash (CRC-32, 31 bits) of each part's text: the same
  name (and eps) gives the same key in every run, whatever else runs beside it."""
  for p in parts:
    text = f"{float(p)!r}" if isinstance(p, (int, float)) else str(p)
    key = jax.random.fold_in(key, zlib.crc32(text.encode("utf-8")) & 0x7FFFFFFF)
  return key


def attack_key(key: jax.Array, name: str, eps: float) -> jax.Array:
  """The key of attack `name` at `eps` in `evaluate` (battery, eps grid and masking
  checks alike): a function of the name and eps only, not of the attack's position
  in `config.eval.attacks`.

  Args:
    key: the evaluation's key (`PRNGKey(config.eval.seed)`).
    name: an attack name (`ATTACKS`).
    eps: the budget it runs at.

  Returns:
    A PRNG key.
  """
  return _name_key(key, "attack", name, float(eps))


def default_eval_config() -> ml_collections.ConfigDict:
  """Every evaluation key with its default (sized for a laptop on MNIST)."""
  return ml_collections.ConfigDict(
    {
      # the battery, in table order: registered attacks (`attacks.attack_names()`), one
      # per name, each a name or a name with options ("pgd(num_steps=50)",
      # `attacks.parse_attack`)
      "attacks": ("fgsm", "pgd"),
      # name -> options, wherever the attack runs (battery, the FGSM/PGD eps-grid curve,
      # the masking checks' PGD and Square); options in an `attacks` string are added
      # to these; the rest are the attack's defaults. Step sizes are fractions of eps.
      "attack_options": {
        "pgd": {"num_steps": 20, "step_size": 0.1},
        # CW-L2 (unbounded, minimum-norm): Adam steps per search over c, searches over
        # c (c grows 10x per search until one succeeds, then bisects), the first c,
        # Adam's rate in tanh space; this budget breaks every test point of the MNIST
        # configs that ship (an unbroken point is flagged by the masking checks)
        "cw": {
          "num_steps": 100,
          "binary_search_steps": 6,
          "initial_const": 0.1,
          "learning_rate": 0.1,
        },
        "apgd_t": {"num_target_classes": 3},  # 9 in AutoAttack
        "fab_t": {"num_target_classes": 3},
        "square": {"num_queries": 1000},  # 5000 in AutoAttack
        "autoattack": {"num_target_classes": 3, "num_queries": 1000},
      },
      "eps": 0.1,  # Linf budget of the eps-bounded attacks
      "eps_grid": (0.0, 0.05, 0.1, 0.15, 0.2, 0.3),  # FGSM/PGD accuracy-vs-eps curve
      # minimum-norm attacks: accuracy at these L2 radii (correct, or broken only
      # beyond the radius)
      "l2_thresholds": (0.5, 1.0, 1.5, 2.0),
      "batch_size": 500,
      "num_examples": config_dict.placeholder(int),  # None: the whole test set
      # names from `augment.corruption_names("all")` and "common" (the 15 types), e.g.
      # ("common",) or ("gaussian_noise", "fog"); () is none
      "corruptions": (),
      "corruption_severities": (1, 2, 3, 4, 5),
      "corruption_examples": 500,
      "corruption_tables": "imagenet",  # severity tables: "imagenet" or "cifar10" (CIFAR-10-C)
      "flip_rate": False,
      "flip_frames": 10,
      "flip_examples": 200,
      "masking_checks": True,
      "masking_examples": 200,
      "gallery_size": 8,
      "baseline_workdir": "",  # a run whose report has corruption accuracies (for mCE)
      "hard_positive_set": "",  # an .npz from generate_hard_positive_set: accuracy on it
      "seed": 0,
    }
  )


def _corruption_types(spec) -> list:
  """The corruption types of `config.eval.corruptions`, "common" expanded, each once."""
  from advjax import augment  # pylint: disable=import-outside-toplevel

  names = _validate.parse_names(
    spec,
    "config.eval.corruptions",
    ("common",) + tuple(augment.corruption_names("all")),
    "corruption",
  )
  types = [t for n in names for t in (augment.corruption_names("common") if n == "common" else [n])]
  return list(dict.fromkeys(types))


def parse_attack_specs(specs, key: str = "config.eval.attacks") -> Dict[str, str]:
  """`config.eval.attacks` as name -> attack string, in order.

  Args:
    specs: a tuple of registered attacks, each a name or "name(option=value, ...)"
      (`attacks.parse_attack`), one per name.
    key: the config key, for messages.

  Returns:
    {name: the attack string as given}.

  Raises:
    ValueError: naming `key`, for a string instead of a tuple, an unknown attack or
      option, or a name listed twice.
  """
  joined = [t for t in ([specs] if isinstance(specs, str) else specs or ()) if isinstance(t, str)]
  if isinstance(specs, str) or any("," in t and "(" not in t for t in joined):
    # a string, or ("fgsm,pgd",): what `--config.eval.attacks=fgsm,pgd` parses to
    names = tuple(n.strip() for t in joined for n in t.split(",") if n.strip())
    if any("(" in t for t in joined):
      names = ("fgsm", "pgd(num_steps=20)")
    cli = "(" + ",".join(repr(n) for n in names) + ("," if len(names) == 1 else "") + ")"
    raise ValueError(
      f"`{key}` must be a tuple of attacks such as {names!r} (on the command line: "
      f'--{key}="{cli}"), not {"a string" if isinstance(specs, str) else "names joined by commas"}; '
      f"got {specs!r}."
    )
  if not isinstance(specs, (tuple, list)):
    raise ValueError(f"`{key}` must be a tuple of attacks; got {specs!r}.")
  out = {}
  for spec in specs:
    try:
      name, _ = A.parse_attack(spec)
    except ValueError as err:
      raise ValueError(f"`{key}`: {err}") from None
    if name in out:
      raise ValueError(f"`{key}` lists the attack {name!r} twice: {out[name]!r} and {spec!r}.")
    out[name] = spec.strip()
  return out


def check_attack_options(options, key: str = "config.eval.attack_options") -> Dict[str, Dict]:
  """`config.eval.attack_options` as {name: {option: value}}, checked by the registry.

  Raises:
    ValueError: naming `key`, for an unknown attack or an option it does not take.
  """
  options = options.to_dict() if hasattr(options, "to_dict") else dict(options or {})
  for name, opts in options.items():
    if not isinstance(opts, dict):
      raise ValueError(f"`{key}.{name}` must map option names to values; got {opts!r}.")
    try:
      A.attack_options(name, **opts)
    except ValueError as err:
      raise ValueError(f"`{key}.{name}`: {err}") from None
  return options


def eval_attack(name: str, cfg) -> str:
  """The attack string the evaluation runs for `name`: the registry's defaults,
  updated by `cfg.attack_options[name]`, then by the options of the battery's string of
  that name (`cfg.attacks`), e.g. "pgd(num_steps=20, step_size=0.1)".

  Raises:
    ValueError: for an unknown name or option.
  """
  options = dict(check_attack_options(cfg.attack_options).get(name, {}))
  spec = parse_attack_specs(cfg.attacks).get(name)
  if spec is not None:
    options.update(A.parse_attack(spec)[1])
  return A.format_attack(name, options)


def make_eval_attack(name: str, cfg) -> Callable:
  """`(key, logits_fn, images, labels, eps) -> adversarial images` for the attack `name`
  as `config.eval` runs it: `attacks.build_attack(eval_attack(name, cfg))`.

  eps may be traced, so one compiled function serves a whole eps grid.

  Raises:
    ValueError: for an unknown name or option.
  """
  return A.build_attack(eval_attack(name, cfg))


def _jit_attack(logits_fn, attack):
  """One compiled `(key, x, y, eps, ids) -> (x_adv, correct, conf, l2, linf, pred)`;
  `ids` [B] are the examples' dataset indices (`example_ids` of the attack)."""

  def fn(f, k, x, y, eps, ids):
    x_adv = attack(k, f, x, y, eps, example_ids=ids)
    logits = f(x_adv)
    pred = jnp.argmax(logits, -1)
    return (
      x_adv,
      pred == y,
      _calibration.max_softmax(logits),
      metrics.l2_norm(x_adv, x),
      metrics.linf_norm(x_adv, x),
      pred,
    )

  return models.jit_with_model(fn, logits_fn)


def _l2_thresholds(cfg) -> list:
  """`config.eval.l2_thresholds` as sorted floats.

  Raises:
    ValueError: for a negative or non-numeric threshold.
  """
  try:
    ts = sorted(float(t) for t in cfg.l2_thresholds)
  except (TypeError, ValueError) as err:
    raise ValueError(
      f"config.eval.l2_thresholds must be numbers (L2 radii); got {cfg.l2_thresholds!r}."
    ) from err
  if any(t < 0 for t in ts):
    raise ValueError(f"config.eval.l2_thresholds must be >= 0; got {cfg.l2_thresholds!r}.")
  return ts


def min_norm_summary(correct, l2, thresholds) -> Dict:
  """What a minimum-norm attack measures, over all N points.

  A point is broken when the prediction on its adversarial example is not its label
  (points misclassified clean count as broken at L2 0). Success rate: the fraction
  broken. Median and mean L2: over the broken points (None when none is). Accuracy at
  radius t: the fraction of points that are correct or broken only beyond t (L2 > t),
  i.e. what an L2 attack of budget t that is as good as this one leaves.

  Args:
    correct: bool [N], the prediction on the adversarial example is the label.
    l2: float [N], the L2 norm of each adversarial perturbation.
    thresholds: L2 radii.

  Returns:
    {"accuracy", "success_rate", "num_unbroken", "median_l2", "mean_l2",
    "l2_thresholds", "accuracy_at_l2"} (the last two lists of the same length).
  """
  correct, l2 = np.asarray(correct, bool), np.asarray(l2, np.float64)
  broken = ~correct
  norms = l2[broken & np.isfinite(l2)]
  return {
    "accuracy": float(correct.mean()),
    "success_rate": float(broken.mean()),
    "num_unbroken": int(correct.sum()),
    "median_l2": float(np.median(norms)) if norms.size else None,
    "mean_l2": float(np.mean(norms)) if norms.size else None,
    "l2_thresholds": [float(t) for t in thresholds],
    "accuracy_at_l2": [float(np.mean(correct | (l2 > t))) for t in thresholds],
  }


def _gallery_indices(labels, pred_clean, pred_adv, k: int) -> np.ndarray:
  """Up to `k` indices for an adversarial gallery: successful adversarial examples
  first (right on the clean image, wrong on the attacked one), then the failures, each
  group in test-set order."""
  labels, pred_clean, pred_adv = map(np.asarray, (labels, pred_clean, pred_adv))
  succeeded = (pred_clean == labels) & (pred_adv != labels)
  order = np.argsort(~succeeded, kind="stable")
  return order[:k]


def _run_attack(fn, eps, ds, key, batch_size, progress, desc, keep=0, clean_pred=None):
  """Per-example correctness, confidence, L2 and Linf norms over ds; `keep` gallery
  examples of the first batch (successful adversarial examples first, see
  `_gallery_indices`) as (clean, adversarial, labels, clean predictions, predictions).

  Every batch gets the same key and each example its dataset index as `example_ids`,
  so an example's result does not depend on `batch_size`."""
  out = {k: [] for k in ("correct", "conf", "l2", "linf", "pred")}
  kept = None
  nb = -(-len(ds) // batch_size)
  eps = jnp.float32(eps)
  for i, (x, y, m) in enumerate(
    tqdm(iterate_eval(ds, batch_size), total=nb, desc=desc, disable=not progress, leave=False)
  ):
    ids = jnp.arange(i * batch_size, (i + 1) * batch_size, dtype=jnp.int32)
    x_adv, *per_example = fn(key, x, y, eps, ids)
    per_example = jax.device_get(per_example)  # the images stay on the device
    for name, v in zip(out, per_example):
      out[name].append(v[m])
    if i == 0 and keep:
      n = int(m.sum())  # padding is at the end
      pred_adv = np.asarray(per_example[-1][:n])
      pred_clean = np.asarray(clean_pred[:n]) if clean_pred is not None else y[:n]
      idx = _gallery_indices(y[:n], pred_clean, pred_adv, keep)
      kept = (x[idx], np.asarray(x_adv[jnp.asarray(idx)]), y[idx], pred_clean[idx], pred_adv[idx])
  return {k: np.concatenate(v) for k, v in out.items()}, kept


def _median(v):
  v = v[np.isfinite(v)]
  return float(np.median(v)) if v.size else None


def evaluate(
  logits_fn: Callable,
  dataset,
  config: Optional[ml_collections.ConfigDict] = None,
  *,
  progress: bool = True,
  baseline_report: Optional[Dict] = None,
  name: str = "",
) -> Dict:
  """Runs the evaluation suite and returns a report dict (see `validate_report`).

  Args:
    logits_fn: `images [B, H, W, C] in [0, 1] -> logits [B, K]`, inference mode.
    dataset: an `ArrayDataset` or a pair (images [N, H, W, C], labels [N]).
    config: see `default_eval_config` (missing keys take their defaults).
    progress: show progress bars.
    baseline_report: a report of a baseline run with corruption accuracies, for mCE.
    name: the run's name, written into the report.

  Returns:
    The report dict; `report["_gallery"][attack]` holds arrays for figures (not
    saved): (clean, adversarial, labels, clean predictions, predictions) of up to
    `gallery_size` examples of the first batch, successful adversarial examples first.

  Raises:
    ValueError: for an unknown attack name or a bad dataset.
  """
  cfg = default_eval_config()
  if config is not None:
    for k in config.keys():
      if k not in cfg:
        raise ValueError(f"Unknown eval config key {k!r}; known: {sorted(cfg.keys())}.")
    given = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    if "attacks" in given:  # a string here would make `update` raise a TypeError
      parse_attack_specs(given["attacks"])
    if "corruptions" in given:
      _corruption_types(given["corruptions"])
    try:  # attack_options merge per option: {"pgd": {"num_steps": 5}} keeps pgd's step
      cfg.update(given)
    except TypeError as err:
      raise ValueError(f"config.eval: {err}") from None
  check_attack_options(cfg.attack_options)
  names = tuple(parse_attack_specs(cfg.attacks))
  specs = {n: eval_attack(n, cfg) for n in dict.fromkeys(names + ("fgsm", "pgd", "square"))}
  _corruption_types(cfg.corruptions)  # checked before any attack runs
  if cfg.eps < 0:
    raise ValueError(f"config.eps must be >= 0; got {cfg.eps}.")
  thresholds = _l2_thresholds(cfg)
  if not isinstance(dataset, ArrayDataset):
    images, labels = dataset
    dataset = ArrayDataset(
      np.asarray(images), np.asarray(labels), int(np.max(labels)) + 1, "arrays"
    )
  if cfg.num_examples is not None and (
    not isinstance(cfg.num_examples, int) or cfg.num_examples < 1
  ):
    raise ValueError(
      f"config.eval.num_examples must be None (the whole test set) or an "
      f"integer >= 1; got {cfg.num_examples!r}."
    )
  ds = dataset.take(cfg.num_examples)
  bs = min(cfg.batch_size, len(ds))
  key = jax.random.PRNGKey(cfg.seed)
  t_start = time.perf_counter()

  clean_fn = models.jit_with_model(lambda f, x: f(x), logits_fn)
  logits = np.concatenate([np.asarray(clean_fn(x))[m] for x, _, m in iterate_eval(ds, bs)])
  correct = logits.argmax(-1) == ds.labels
  conf_clean = np.asarray(_calibration.max_softmax(jnp.asarray(logits)))
  clean_acc = float(correct.mean())

  report = {
    "name": name,
    "num_test_examples": len(ds),
    "clean_accuracy": clean_acc,
    "clean_confidence": float(conf_clean.mean()),
    "attacks": {},
    "robustness_gap": {},
  }
  gallery = {}
  per_attack = {}
  jitted = {}

  def get(n):  # one compiled attack per name, shared by the battery, eps grid and checks
    if n not in jitted:
      jitted[n] = _jit_attack(logits_fn, A.build_attack(specs[n]))  # eval_attack's
    return jitted[n]

  for n in names:
    t0 = time.perf_counter()
    res, kept = _run_attack(
      get(n),
      cfg.eps,
      ds,
      attack_key(key, n, cfg.eps),
      bs,
      progress,
      f"eval {n}",
      keep=cfg.gallery_size,
      clean_pred=logits.argmax(-1),
    )
    per_attack[n] = res
    if kept is not None:
      gallery[n] = kept
    succ = ~res["correct"]
    bounded = A.get_attack(n).bounded  # "cw" is a minimum-norm L2 attack
    entry = {
      "label": A.attack_label(specs[n]),
      "attack": specs[n],
      "eps": float(cfg.eps) if bounded else None,
      "norm": "linf" if bounded else "l2",
      "kind": "bounded" if bounded else "min_norm",
      "accuracy": float(res["correct"].mean()),
      "confidence": float(res["conf"].mean()),
      "median_l2": _median(np.where(succ, res["l2"], np.nan)),
      "median_linf": _median(np.where(succ, res["linf"], np.nan)),
    }
    if not bounded:  # no eps: a success rate and norms, not an accuracy with a gap
      entry.update(min_norm_summary(res["correct"], res["l2"], thresholds))
    else:
      report["robustness_gap"][n] = clean_acc - entry["accuracy"]
    entry["time_s"] = time.perf_counter() - t0
    report["attacks"][n] = entry

  # accuracy vs eps (FGSM and PGD), also the first masking check
  grid = sorted(set(float(e) for e in cfg.eps_grid))
  curve, curve_labels = {"eps": grid}, {}
  for n in ("fgsm", "pgd"):
    curve[n] = []
    curve_labels[n] = A.attack_label(specs[n])
    for e in grid:
      if n in per_attack and e == float(cfg.eps):  # the battery already ran this point
        curve[n].append(report["attacks"][n]["accuracy"])
        continue
      res, _ = _run_attack(get(n), e, ds, attack_key(key, n, e), bs, progress, f"{n} eps {e:g}")
      curve[n].append(float(res["correct"].mean()))
  report["accuracy_vs_eps"] = curve
  report["accuracy_vs_eps_labels"] = curve_labels  # what each curve ran (its budget)

  # calibration, clean and under the strongest eps-bounded attack we ran
  strongest = min(
    (n for n in names if A.get_attack(n).bounded),
    key=lambda n: report["attacks"][n]["accuracy"],
    default=None,
  )
  cal = {
    "num_bins": 15,
    "ece_clean": _calibration.expected_calibration_error(conf_clean, correct),
    "hist_clean": _calibration.confidence_histogram(conf_clean)[0],
  }
  if strongest:
    r = per_attack[strongest]
    cal.update(
      attack=strongest,
      ece_adv=_calibration.expected_calibration_error(r["conf"], r["correct"]),
      hist_adv=_calibration.confidence_histogram(r["conf"])[0],
    )
  report["calibration"] = cal

  report["hard_positive_set"] = (
    _hard_positive_accuracy(clean_fn, cfg.hard_positive_set, bs) if cfg.hard_positive_set else None
  )
  report["corruptions"] = _corruptions(logits_fn, ds, cfg, key, progress, baseline_report)
  report["flip_rate"] = _flip_rates(logits_fn, ds, cfg, key) if cfg.flip_rate else None
  report["masking_checks"] = (
    _masking_checks(logits_fn, ds, cfg, key, report, get, per_attack)
    if cfg.masking_checks
    else None
  )
  report["eval_time_s"] = time.perf_counter() - t_start
  report["_gallery"] = gallery
  return report


def _hard_positive_accuracy(clean_fn, path: str, batch_size: int) -> Dict:
  """Accuracy on a saved adversarial / hard-positive set (Rozsa et al. 2016, Table 1:
  generated from other networks than the one under test), overall and per type."""
  if not os.path.exists(path):
    raise FileNotFoundError(f"config.eval.hard_positive_set: no file {path!r}.")
  cols = A.load_hard_positive_set(path)
  ds = ArrayDataset(
    cols["image"], cols["label"].astype(np.int32), int(cols["label"].max()) + 1, "hard positives"
  )
  correct = np.concatenate(
    [np.asarray(clean_fn(x)).argmax(-1)[m] == y[m] for x, y, m in iterate_eval(ds, batch_size)]
  )
  by_type = {}
  for t in sorted(set(cols["type"].tolist())):
    sel = cols["type"] == t
    by_type[str(t)] = float(correct[sel].mean())
  return {
    "path": path,
    "rows": int(len(correct)),
    "accuracy": float(correct.mean()),
    "error": float(1.0 - correct.mean()),
    "accuracy_by_type": by_type,
  }


def _corruptions(logits_fn, ds, cfg, key, progress, baseline_report):
  names = _corruption_types(cfg.corruptions)
  if not names:
    return None
  sub = ds.take(cfg.corruption_examples)
  table = _corruption.corruption_accuracies(
    logits_fn,
    sub.images,
    sub.labels,
    names=names,
    severities=cfg.corruption_severities,
    tables=cfg.corruption_tables,
    batch_size=cfg.batch_size,
    progress=progress,
    key_of=lambda c, s: _name_key(key, "corruption", names[c], int(s)),
  )
  acc = {name: {str(s): a for s, a in by_severity.items()} for name, by_severity in table.items()}
  out = {
    "accuracy": acc,
    "num_examples": len(sub),
    "mean": float(np.mean([a for v in acc.values() for a in v.values()])),
  }
  if baseline_report and (baseline_report.get("corruptions") or {}).get("accuracy"):
    base = baseline_report["corruptions"]["accuracy"]
    mce = _corruption.mean_corruption_error(
      _corruption.errors_from_accuracy(acc), _corruption.errors_from_accuracy(base)
    )
    out.update(mce=mce["mce"], ce=mce["ce"], baseline=baseline_report.get("name", ""))
  return out


def _flip_rates(logits_fn, ds, cfg, key):
  sub = ds.take(cfg.flip_examples)
  x = jnp.asarray(sub.images)
  out = {}
  for kind in _flip.PERTURBATIONS:
    keys = jax.random.split(_name_key(key, "flip", kind), len(sub))

    def preds(f, keys, x, kind=kind):
      frames = jax.vmap(
        lambda k, im: _flip.perturbation_sequence(k, im, kind=kind, num_frames=cfg.flip_frames)
      )(keys, x)  # [N, T, ...]
      frames = jnp.swapaxes(frames, 0, 1)  # [T, N, ...]
      return jax.lax.map(lambda frame: jnp.argmax(f(frame), -1), frames)

    out[kind] = _flip.flip_probability(np.asarray(models.jit_with_model(preds, logits_fn)(keys, x)))
  return out


def _accuracy_under(fn, key, x, y, eps) -> float:
  ids = jnp.arange(x.shape[0], dtype=jnp.int32)  # the first examples of the test set
  return float(np.mean(np.asarray(fn(key, x, y, jnp.float32(eps), ids)[1])))


def _masking_checks(logits_fn, ds, cfg, key, report, get, per_attack):
  """The six checks: two on the table's eps-grid curve, four on the first
  `masking_examples` test points (their details say so when that is fewer than the
  table's); PGD and Square there are the battery's own per-point results (`per_attack`)
  when it ran them, since they would run with the same keys on the same points. Then one
  check per minimum-norm attack of the table."""
  sub = ds.take(cfg.masking_examples)
  x, y = jnp.asarray(sub.images), jnp.asarray(sub.labels)
  on_subset = lambda check: _masking.on_subset(check, len(sub), len(ds))
  curve = report["accuracy_vs_eps"]
  checks = [_masking.check_monotone_in_eps(curve["eps"], curve["pgd"])]
  unbounded_pgd = _jit_attack(logits_fn, A.build_attack("pgd", num_steps=20, step_size=0.05))
  unbounded = _accuracy_under(unbounded_pgd, _name_key(key, "masking", "pgd eps 1"), x, y, 1.0)
  checks.append(on_subset(_masking.check_unbounded(unbounded)))
  i = int(np.argmin(np.abs(np.asarray(curve["eps"]) - cfg.eps)))
  checks.append(_masking.check_iterative_stronger(curve["fgsm"][i], curve["pgd"][i]))

  def accuracy(name):  # the same key and points as the battery: its results, when it ran
    if name in per_attack:
      return float(np.mean(per_attack[name]["correct"][: len(sub)]))
    return _accuracy_under(get(name), attack_key(key, name, cfg.eps), x, y, cfg.eps)

  white, black = accuracy("pgd"), accuracy("square")
  checks.append(on_subset(_masking.check_black_box_weaker(black, white)))
  obj = A.get_objective("ce")
  grad = lambda f, x, y: jax.grad(lambda z: obj.ascent_value(f(z), y).sum())(x)
  g = models.jit_with_model(grad, logits_fn)(x, y)
  zero = float(np.mean(np.all(np.asarray(g).reshape(len(sub), -1) == 0, axis=-1)))
  checks.append(on_subset(_masking.check_zero_gradients(zero)))
  l1, l2 = np.asarray(logits_fn(x)), np.asarray(logits_fn(x))
  checks.append(on_subset(_masking.check_deterministic(float(np.max(np.abs(l1 - l2))))))
  for n, a in report["attacks"].items():  # on the table's points
    if a.get("kind") == "min_norm":
      checks.append(
        _masking.check_min_norm_budget(
          a["label"],
          a["num_unbroken"],
          report["num_test_examples"],
          raise_hint=f"the budget of {a['attack']!r} in config.eval.attack_options",
        )
      )
  return _masking.summarize(checks)
