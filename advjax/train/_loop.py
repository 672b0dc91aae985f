"""`train_and_evaluate(config, workdir)`: the whole run, resumable, with a report."""

import functools
import itertools
import json
import os
import time
from typing import Dict, List, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from tqdm.auto import tqdm

from advjax import _files, attacks, data, models
from advjax.losses import adaptive_alpha
from advjax.train import _config
from advjax.train import _distributed
from advjax.train import _events
from advjax.train import _objectives
from advjax.train import _schedules
from advjax.train import _stall
from advjax.train import _step
from advjax.train import _views
from advjax.train._checkpoint import Checkpointer
from advjax.train._state import TrainState, create_train_state

# Keys that may change between a run and its continuation (more epochs, other eval).
_RESUMABLE_KEYS = (
  "num_epochs",
  "eval",
  "progress",
  "keep_checkpoints",
  "stall_check",
  "input.workers",
)


class NonFiniteLossError(FloatingPointError):
  """Training produced a NaN or inf loss; the last good checkpoint is kept."""


def _config_diff(a: Dict, b: Dict, prefix="") -> List[str]:
  keys = sorted(set(a) | set(b))
  out = []
  for k in keys:
    if prefix + k in _RESUMABLE_KEYS:
      continue
    va, vb = a.get(k), b.get(k)
    if isinstance(va, dict) and isinstance(vb, dict):
      out += _config_diff(va, vb, prefix + k + ".")
    elif va != vb:
      out.append(f"{prefix}{k}: {va!r} != {vb!r}")
  return out


def _jsonable_config(config) -> Dict:
  return json.loads(config.to_json_best_effort())


def _check_same_config(workdir: str, config) -> None:
  """Raises ValueError if workdir/config.json differs from `config` in a key that a
  continuation may not change."""
  with open(os.path.join(workdir, "config.json"), encoding="utf-8") as f:
    diff = _config_diff(_config.from_saved(json.load(f)), _jsonable_config(config))
  if diff:
    raise ValueError(
      f"workdir {workdir!r} holds a run of another config "
      f"({'; '.join(diff[:5])}); use a new workdir."
    )


def _with_extra(train: data.ArrayDataset, path: str) -> data.ArrayDataset:
  """`train` followed by the images and labels of the .npz at `path` (config.train_extra,
  read by `data.load_npz`).

  Raises:
    ValueError: naming config.train_extra, when the file lacks the columns, or its images
      or labels do not fit the training split.
  """
  try:
    extra = data.load_npz(path)
  except ValueError as err:
    raise ValueError(f"config.train_extra={path!r}: {err}") from None
  if extra.image_shape != train.image_shape:
    raise ValueError(
      f"config.train_extra={path!r}: images of shape {extra.images.shape}; "
      f"the training images are [N, {', '.join(map(str, train.image_shape))}]."
    )
  if len(extra) and (extra.labels.min() < 0 or extra.labels.max() >= train.num_classes):
    raise ValueError(
      f"config.train_extra={path!r}: labels must be in [0, "
      f"{train.num_classes - 1}]; got [{extra.labels.min()}, "
      f"{extra.labels.max()}]."
    )
  return data.ArrayDataset(
    np.concatenate([train.images, extra.images]),
    np.concatenate([train.labels, extra.labels]),
    train.num_classes,
    train.name,
  )


class Run:
  """Everything built from a config: data, model, optimizer, step functions."""

  def __init__(self, config: ml_collections.ConfigDict, mesh=None):
    self.config = c = _config.validate_config(config)
    self.grain = c.input.pipeline == "grain"
    if self.grain:
      self._open_sources()
    else:
      self.sources = None
      self.splits = data.load_splits(
        c.dataset, validation_size=c.validation_size, data_dir=c.data_dir or None, seed=c.seed
      )
      if c.train_extra:
        base = len(self.splits["train"])
        self.splits["train"] = _with_extra(self.splits["train"], c.train_extra)
        self.num_extra = len(self.splits["train"]) - base
      train = self.splits["train"]
      self.num_train, self.num_classes = len(train), train.num_classes
      self.image_shape = train.image_shape
    self.model = models.get_model(
      c.model, num_classes=self.num_classes, dtype=jnp.dtype(c.dtype), **_config.model_kwargs(c)
    )
    self.steps_per_epoch = data.steps_per_epoch(self.num_train, c.batch_size)
    self.total_steps = c.num_epochs * self.steps_per_epoch
    ta = c.train_attack
    self.adversarial = c.recipe != "standard"
    self.source_name = _views.parse_source(ta.name)[0]
    self.source_options = _views.source_options(ta.name)
    self.free = self.source_name == "free"
    # free AT: m updates per batch
    updates_per_step = int(self.source_options["replays"]) if self.free else 1
    self.lr = _schedules.lr_schedule(
      c.lr_schedule,
      c.learning_rate,
      self.total_steps * updates_per_step,
      warmup_steps=c.warmup_epochs * self.steps_per_epoch * updates_per_step,
    )
    self.tx = _schedules.make_optimizer(
      c.optimizer, self.lr, momentum=c.momentum, weight_decay=c.weight_decay, nesterov=c.nesterov
    )
    self.eps_fn = _schedules.eps_schedule(
      c.eps_schedule if self.adversarial else "constant",
      ta.eps if self.adversarial else 0.0,
      c.eps_warmup_epochs * self.steps_per_epoch,
    )
    self.mesh = mesh if mesh is not None else data.make_mesh()
    self.noisymix = _config.noisymix_spec(c)
    self._steps = {}
    self.source = self.make_source() if self.adversarial else None
    self.eval_step = _step.make_eval_step(self.model, source=self.source, mesh=self.mesh)
    self.train_step = self.train_step_at(self.total_steps - 1)

  def _open_sources(self) -> None:
    """The Grain pipeline's sources; the validation slice and the evaluation's test
    examples are read into memory through the evaluation transform."""
    c = self.config
    self.sources = data.open_splits(
      c.dataset,
      validation_size=c.validation_size,
      seed=c.seed,
      data_dir=c.data_dir or None,
      skip_corrupt=c.input.skip_corrupt,
    )
    train = self.sources["train"]
    self.num_train, self.num_classes = len(train), train.num_classes
    channels = train[0]["image"].shape[-1]
    if c.train_augment == "random_resized_crop_flip":
      self.image_shape = (c.input.image_size, c.input.image_size, channels)
    else:
      self.image_shape = tuple(train[0]["image"].shape)
    read = functools.partial(
      data.read_eval_split,
      transform=c.input.eval_transform,
      resize=c.input.eval_resize,
      crop=c.input.image_size,
      worker_count=c.input.workers,
      name=c.dataset,
    )
    self.splits = {
      "validation": read(self.sources["validation"]),
      "test": read(self.sources["test"], num_examples=c.eval.num_examples),
    }
    for split, ds in self.splits.items():
      if ds.image_shape != self.image_shape:
        raise ValueError(
          f"the {split} images are {ds.image_shape} after config.input.eval_transform="
          f"{c.input.eval_transform!r}, the training images {self.image_shape}: set "
          f"config.input.eval_transform='resize_center_crop' and config.input.image_size, "
          f"or use data of one size."
        )

  def grain_iterator(self):
    """A fresh Grain iterator over this process's shard of the training split (its
    position is restored in place by `Checkpointer.restore`)."""
    c = self.config
    return data.grain_train_iterator(
      self.sources["train"],
      batch_size=c.batch_size,
      seed=c.seed,
      augment=c.train_augment,
      image_size=c.input.image_size or None,
      worker_count=c.input.workers,
    )

  def train_stream(self, start_step: int, grain_iterator=None) -> "TrainStream":
    """The host batches (images, labels) of steps start_step, start_step + 1, ...

    In-memory data: the global batch of each step (every process holds it). Grain: this
    process's part of it, from `grain_iterator` (restored to `start_step`'s position by
    `Checkpointer.restore`), or from a fresh iterator.
    """
    c = self.config
    if not self.grain:
      return TrainStream(
        (
          batch
          for _, batch in data.iterate_train(
            self.splits["train"],
            c.batch_size,
            c.seed,
            start_step,
            self.total_steps,
            c.train_augment,
          )
        ),
        None,
      )
    it = grain_iterator if grain_iterator is not None else self.grain_iterator()
    return TrainStream(((b["image"], b["label"]) for b in it), it)

  def place(self, batch):
    """A host batch of `train_stream` as global arrays split over the mesh."""
    return data.shard_batch(batch, self.mesh, process_local=self.grain)

  def example_batch(self):
    """The host batch (images, labels) of step 0."""
    return next(iter(self.train_stream(0)))

  def make_source(self, num_steps: Optional[int] = None):
    """The view source of the config; with `num_steps`, PGD with that many steps (the
    curriculum's stages). Free AT validates with PGD of its `num_steps`."""
    c = self.config
    ta = c.train_attack
    spec = ta.name
    if self.free:
      spec = _views.canonical_source("pgd", num_steps=self.source_options["num_steps"])
    elif num_steps is not None:
      spec = _views.canonical_source(spec, num_steps=num_steps)
    attack_fn = None
    if self.free or self.source_name not in _views.VIEW_SOURCES:
      attack_fn = _step.make_attack_fn(spec, objective="ce" if self.free else c.objective)
    return _views.make_source(
      spec, attack_fn=attack_fn, pass_tau=ta.pass_tau, pass_iterations=ta.pass_iterations
    )

  def attack_steps_at(self, step: int) -> Optional[int]:
    """PGD steps at a training step: the source's `num_steps` (None for a source without
    steps), or with curriculum "steps" a linear ramp 1 -> num_steps by epoch over
    `eps_warmup_epochs` (easy -> hard; Cai et al. 2018, "Curriculum Adversarial
    Training")."""
    c = self.config
    k = self.source_options.get("num_steps")
    if c.train_attack.curriculum != "steps" or c.eps_warmup_epochs <= 0:
      return k
    epoch = step // self.steps_per_epoch
    return 1 + int((k - 1) * min(1.0, epoch / c.eps_warmup_epochs))

  def train_step_at(self, step: int):
    """The jitted train step used at `step` (one per curriculum stage, built once)."""
    c = self.config
    k = self.attack_steps_at(step)
    if k not in self._steps:
      weight_decay = c.weight_decay if c.optimizer != "adamw" else 0.0
      if self.free:
        fn = _step.make_free_train_step(
          self.model,
          self.tx,
          replays=int(self.source_options["replays"]),
          eps_fn=self.eps_fn,
          weight_decay=weight_decay,
          mesh=self.mesh,
        )
      else:
        fn = _step.make_train_step(
          self.model,
          self.tx,
          recipe=c.recipe,
          eps_fn=self.eps_fn,
          weight_decay=weight_decay,
          mesh=self.mesh,
          source=(self.source if k == self.source_options.get("num_steps") else self.make_source(k))
          if self.adversarial
          else None,
          maxup=int(c.train_attack.maxup),
          noisymix=self.noisymix,
          skip_clean=(c.recipe == "adversarial" and c.alpha == 0.0 and self.noisymix is None),
          objective=c.objective,
          awp_gamma=c.awp_gamma,
        )
      self._steps[k] = fn
    return self._steps[k]

  def init_state(self) -> TrainState:
    c = self.config
    alpha = c.alpha if self.adversarial else 1.0
    state = create_train_state(
      self.model,
      self.tx,
      jax.random.PRNGKey(c.seed),
      self.image_shape,
      alpha=alpha,
      eps=float(self.eps_fn(0)),
      delta_batch=c.batch_size if self.free else 0,
    )
    if c.init_workdir:
      state = _init_from(state, c.init_workdir)
    return data.replicate(state, self.mesh)

  def validate(self, state: TrainState) -> Dict[str, float]:
    """Clean and adversarial accuracy on the validation slice at the current eps."""
    ds = self.splits["validation"]
    n_dev = self.mesh.devices.size
    bs = max(n_dev, (min(500, len(ds)) // n_dev) * n_dev)
    eps = jnp.float32(self.eps_fn(state.step))
    key = jax.random.fold_in(jax.random.PRNGKey(self.config.seed + 1), int(state.step))
    variables = state.variables()
    tot = np.zeros(2)
    for i, (x, y, m) in enumerate(data.iterate_eval(ds, bs)):
      xs, ys = data.shard_batch((x, y), self.mesh)  # every process holds the slice
      clean, adv = data.gather(self.eval_step(variables, xs, ys, jax.random.fold_in(key, i), eps))
      tot += [np.sum(clean * m), np.sum(adv * m)]
    adv = tot[1] / len(ds) if self.adversarial else None
    return {"val_acc_clean": tot[0] / len(ds), "val_acc_adv": adv}


class TrainStream:
  """An iterator of host training batches (images, labels); `iterator` is the Grain
  iterator behind it, whose position the checkpoints save (None for in-memory data,
  whose position is the step)."""

  def __init__(self, batches, grain_iterator=None):
    self._batches, self.iterator = batches, grain_iterator

  def __iter__(self):
    return self._batches

  def state(self) -> Optional[Dict]:
    """The Grain iterator's JSON state (None for in-memory data)."""
    return None if self.iterator is None else self.iterator.get_state()


def _init_from(state: TrainState, workdir: str) -> TrainState:
  """`state` with the parameters and batch statistics of the run in `workdir`
  (fine-tuning); optimizer state, step and key stay fresh.

  Raises:
    FileNotFoundError: if `workdir` is not a run with a checkpoint.
    ValueError: if its model differs from this one.
  """
  _, other = load_run(workdir)
  shapes = lambda t: jax.tree_util.tree_map(jnp.shape, t)
  if shapes(other.params) != shapes(state.params):
    raise ValueError(
      f"config.init_workdir {workdir!r} holds another model; fine-tuning "
      "needs the same architecture."
    )
  return state.replace(
    params=jax.device_get(other.params), batch_stats=jax.device_get(other.batch_stats)
  )


def _read_records(path: str, max_step: int) -> List[Dict]:
  if not os.path.exists(path):
    return []
  with open(path, encoding="utf-8") as f:
    recs = [json.loads(line) for line in f if line.strip()]
  return [r for r in recs if r["step"] <= max_step]


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> Dict:
  """Trains, evaluates every epoch, checkpoints, and writes the final report.

  Resumes from the latest checkpoint in `workdir/checkpoints` if there is one; the
  resumed run ends with the same parameters as an uninterrupted one. Writes
  `metrics.jsonl`, `report.json`, `report.md` and `figures/*.png` (evaluations of a
  checkpoint go to `workdir/eval/<name>`, see `evaluate_checkpoint`).

  Args:
    config: a ConfigDict (see `advjax.train.default_config` for every key).
    workdir: the run's folder.

  Returns:
    The report dict, with `output_dir` (the workdir: where report.md was written).

  Raises:
    ValueError: for a bad config, or a workdir that holds a run of another config.
    NonFiniteLossError: when the loss becomes NaN/inf (nothing is overwritten).
    TrainingStalledError: when the training loss stays within `stall_check.tolerance`
      of log K (chance) for `stall_check.epochs` epochs (and at least
      `stall_check.min_steps` steps); the stalled epoch is neither logged nor
      checkpointed, and the message says what to change.
  """
  run = Run(config)  # validates config and data before anything is written
  c = run.config
  primary = _distributed.is_primary()  # the process that writes files
  os.makedirs(workdir, exist_ok=True)
  cfg_path = os.path.join(workdir, "config.json")
  if os.path.exists(cfg_path):
    _check_same_config(workdir, c)
  if primary:
    _files.atomic_write_text(cfg_path, json.dumps(_jsonable_config(c), indent=2, sort_keys=True))

  ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), keep=c.keep_checkpoints)
  state = run.init_state()
  meta = {"train_time_s": 0.0}
  iterator = run.grain_iterator() if run.grain else None
  if ckpt.latest_step() is not None:
    state, meta = ckpt.restore(state, data_iterator=iterator)
    state = data.replicate(state, run.mesh)
  start = int(state.step)
  stream = run.train_stream(start, iterator)
  host_batches = iter(stream)
  metrics_path = os.path.join(workdir, "metrics.jsonl")
  records = _read_records(metrics_path, start)
  if primary:
    _files.atomic_write_text(metrics_path, "".join(json.dumps(r) + "\n" for r in records))
  stall = _stall.make_stall_check(c, run.num_classes, run.steps_per_epoch)
  at_chance = (
    stall.run_length(
      _stall.chance_losses(  # steps at chance before `start`
        [r for r in records if r.get("kind") == "train"]
      )
    )
    if stall
    else 0
  )

  train_time = float(meta.get("train_time_s", 0.0))
  spe = run.steps_per_epoch
  rates, postfix = _events.Throughput(), {}
  # one event file a launch: the final evaluation goes to the training's writer
  with _events.EventWriter(os.path.join(workdir, "tensorboard"), start_step=start) as events:
    with (
      open(metrics_path if primary else os.devnull, "a", encoding="utf-8") as log,
      tqdm(
        total=run.total_steps,
        initial=start,
        desc=c.name,
        disable=not (c.progress and primary),
        unit="step",
      ) as bar,
    ):
      step = start
      while step < run.total_steps:
        epoch_end = min((step // spe + 1) * spe, run.total_steps)
        t0 = time.perf_counter()
        rates.restart()  # the rates leave out validation and checkpointing
        epoch_metrics = []
        batches = (run.place(batch) for batch in itertools.islice(host_batches, epoch_end - step))
        while True:
          try:
            batch = rates.wait(batches)  # the time spent here is the data wait
          except StopIteration:
            break
          state, m = run.train_step_at(step)(state, batch)
          epoch_metrics.append(m)
          rates.step(c.batch_size)
          bar.update(1)
          if bar.n % _PROGRESS_EVERY == 0:
            postfix.update(_rate_postfix(rates))
            bar.set_postfix(postfix, refresh=False)
        epoch_metrics = jax.device_get(epoch_metrics)
        dt = time.perf_counter() - t0
        rates_now = _rate_postfix(rates)  # this epoch's last steps, finished
        for i, m in enumerate(epoch_metrics):
          if not np.isfinite(m["loss"]):
            raise NonFiniteLossError(
              f"non-finite loss {m['loss']} at step {step + i + 1}; the last good "
              f"checkpoint (step {ckpt.latest_step()}) is kept. Lower the learning rate."
            )
        if stall is not None:  # checked before this epoch's records and checkpoint are written
          at_chance = stall.run_length(_stall.chance_losses(epoch_metrics), at_chance)
          if stall.stalled(at_chance):
            message = _stall.stall_message(
              stall,
              at_chance,
              step=epoch_end,
              steps_per_epoch=spe,
              checkpoint_step=ckpt.latest_step(),
              config=c,
            )
            ckpt.close()
            raise _stall.TrainingStalledError(message)
        train_time += dt
        step = epoch_end
        for i, m in enumerate(epoch_metrics):
          rec = {"kind": "train", "step": step - len(epoch_metrics) + i + 1}
          rec.update({k: float(v) for k, v in m.items()})
          log.write(json.dumps(rec) + "\n")
          events.scalars(rec["step"], m, prefix="train/")
        val = run.validate(state)
        if c.recipe == "hybrid":
          state = state.replace(
            alpha=jax.device_put(
              adaptive_alpha(val["val_acc_adv"], val["val_acc_clean"]), state.alpha.sharding
            )
          )
        rec = {
          "kind": "val",
          "step": step,
          "epoch": step // spe,
          "alpha": float(state.alpha),
          "eps": float(run.eps_fn(step)),
          "examples_per_s": len(epoch_metrics) * c.batch_size / dt,
          "epoch_time_s": dt,
          **val,
        }
        log.write(json.dumps(rec) + "\n")
        log.flush()
        events.scalars(
          step,
          {
            k[len("val_") :] if k.startswith("val_") else k: v
            for k, v in rec.items()
            if k not in ("kind", "step")
          },
          prefix="val/",
        )
        events.flush()
        postfix.update(
          rates_now,
          val_clean=f"{val['val_acc_clean']:.3f}",
          val_adv=f"{val['val_acc_adv'] or 0:.3f}",
          alpha=f"{float(state.alpha):.2f}",
        )
        bar.set_postfix(postfix)
        if (step // spe) % c.checkpoint_every_epochs == 0 or step == run.total_steps:
          ckpt.save(
            state, {"train_time_s": train_time, "epoch": step // spe}, data_iterator=stream.iterator
          )
    ckpt.close()
    return final_report(run, state, workdir, train_time=train_time, events=events)


_PROGRESS_EVERY = 20  # steps between updates of the progress bar's rates


def _rate_postfix(rates: "_events.Throughput") -> Dict[str, str]:
  """images/s and the fraction of wall time spent waiting for input (moving averages
  that leave out the compiling first step)."""
  r = rates.rates()
  return {"img/s": f"{r['images_per_s']:.0f}", "data_wait": f"{r['data_wait']:.0%}"}


def read_run_config(workdir: str) -> ml_collections.ConfigDict:
  """The validated config a run was started with (its `config.json`).

  Raises:
    FileNotFoundError: if `workdir` is not an advjax run.
  """
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{workdir!r} is not an advjax run (no config.json).")
  with open(path, encoding="utf-8") as f:
    return _config.validate_config(ml_collections.ConfigDict(_config.from_saved(json.load(f))))


def load_run(workdir: str, mesh=None):
  """The `Run` and latest `TrainState` of a run, rebuilt from its folder.

  For fine-tuning (`config.init_workdir`), ensembles and notebooks:
  `models.make_logits_fn(run.model, state.variables())` is the trained model. The
  checkpoints are opened read-only (a training may still be writing them).

  Returns:
    (run, state).

  Raises:
    FileNotFoundError: if `workdir` has no config.json or no checkpoint.
  """
  run = Run(read_run_config(workdir), mesh=mesh)
  ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), read_only=True)
  try:
    state, _ = ckpt.restore(run.init_state())
  finally:
    ckpt.close()
  return run, state


def _check_eval_name(name: str) -> str:
  """`name` if it is a plain folder name (non-empty, no path separator, no "..", not
  hidden), else ValueError naming it."""
  seps = {"/", "\\", os.sep} | ({os.altsep} if os.altsep else set())
  if (
    not isinstance(name, str)
    or not name.strip()
    or ".." in name
    or name.startswith(".")
    or "\0" in name
    or any(sep in name for sep in seps)
  ):
    raise ValueError(
      f"name must be a plain folder name (non-empty, no path separator, "
      f"no '..', not starting with '.'); got name={name!r}."
    )
  return name


def evaluate_checkpoint(
  config: ml_collections.ConfigDict,
  workdir: str,
  *,
  name: Optional[str] = None,
  time_steps: bool = False,
) -> Dict:
  """Evaluates the latest checkpoint of a finished or interrupted run.

  The training report in `workdir` is never touched: report.json, report.md and
  figures/ go to `workdir/eval/<name>`. Evaluating again under the same name replaces
  that folder whole (written beside it, then swapped in; never half-written). The
  checkpoints are opened read-only, so a training still running in `workdir` may be
  evaluated (see `Checkpointer`).

  Args:
    config: the run's config; only `eval` (and `num_epochs`, `progress`, ...) may differ.
    workdir: the run's folder.
    name: the evaluation's folder name; default `step_<checkpoint step>`.
    time_steps: compile and time the train steps again (`measure_cost`); by default
      the report's cost section carries the training report's numbers, marked "not
      measured in this evaluation".

  Returns:
    The report dict, with `output_dir` the folder holding its report.md.

  Raises:
    FileNotFoundError: if the workdir has no checkpoint.
    ValueError: if the workdir belongs to another config or cannot be read, or `name`
      is not a plain folder name.
  """
  if name is not None:
    _check_eval_name(name)
  run = Run(config)
  if not os.path.exists(os.path.join(workdir, "config.json")):
    raise FileNotFoundError(f"{workdir!r} is not an advjax run (no config.json).")
  _check_same_config(workdir, run.config)
  ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), read_only=True)
  try:
    state, meta = ckpt.restore(run.init_state())
  finally:
    ckpt.close()
  name = f"step_{int(state.step)}" if name is None else name
  return final_report(
    run,
    state,
    workdir,
    train_time=float(meta.get("train_time_s", 0.0)),
    eval_name=name,
    time_steps=time_steps,
  )


# Timed (clean, recipe) step pairs of `measure_cost`, after its warm-up calls; the
# timing stops early (at `_MIN_PAIRS` pairs or more) once it has run `_TIMING_BUDGET_S`.
_TIMED_PAIRS = 21
_WARMUP_CALLS = 2
_MIN_PAIRS = 7
_TIMING_BUDGET_S = 10.0


def measure_cost(
  run: Run,
  state: TrainState,
  *,
  pairs: int = _TIMED_PAIRS,
  warmup: int = _WARMUP_CALLS,
  min_pairs: int = _MIN_PAIRS,
  budget_s: float = _TIMING_BUDGET_S,
) -> Dict:
  """Step time and compiled memory of the recipe's train step relative to a clean step.

  Both steps are compiled once, called `warmup` times each, then timed alternately
  (clean, recipe, clean, recipe, ...) on the same batch, so that a change of machine
  load falls on both alike; each time is one call up to its finished result. The step
  times are medians; `relative_step_time` is the median over the pairs of the recipe's
  time over the clean time beside it (a change of load between pairs cancels out; on a
  quiet machine it equals the ratio of the medians), and `relative_step_time_range`
  the interquartile range of those ratios (its width says how much the load moved
  while timing). Memory is XLA's compiled estimate (arguments + temporaries + outputs)
  of each step, comparable on any device.

  Args:
    run: the run (its model, optimizer, recipe step and first batch).
    state: the state to step from (copied: the steps donate their state).
    pairs: timed (clean, recipe) pairs.
    warmup: untimed calls of each step first.
    min_pairs: pairs timed at least, even past `budget_s`.
    budget_s: seconds of timing after which no new pair starts (past `min_pairs`).

  Returns:
    {"step_time_s", "clean_step_time_s" (medians), "relative_step_time" (the median
    per-pair ratio), "relative_step_time_range" ([q25, q75] of the per-pair ratios),
    "step_time_iqr_s", "clean_step_time_iqr_s" ([q25, q75] of each step's times),
    "timed_pairs", "timing" (how it was timed), "peak_memory_bytes",
    "clean_peak_memory_bytes", "relative_memory"}.
  """
  batch = run.place(run.example_batch())
  clean_step = _step.make_train_step(
    run.model, run.tx, recipe="standard", eps_fn=run.eps_fn, mesh=run.mesh
  )
  compiled = {
    "clean": clean_step.lower(state, batch).compile(),
    "recipe": run.train_step.lower(state, batch).compile(),
  }

  def memory(fn):
    m = fn.memory_analysis()
    if m is None:
      return None
    return int(m.argument_size_in_bytes + m.temp_size_in_bytes + m.output_size_in_bytes)

  states = {k: jax.tree_util.tree_map(jnp.copy, state) for k in compiled}  # donated

  def call(kind):
    t0 = time.perf_counter()
    states[kind], m = compiled[kind](states[kind], batch)
    jax.block_until_ready((states[kind], m))
    return time.perf_counter() - t0

  for _ in range(warmup):
    for kind in compiled:
      call(kind)
  times = {k: [] for k in compiled}
  start = time.perf_counter()
  for i in range(max(pairs, 1)):
    if i >= min_pairs and time.perf_counter() - start > budget_s:
      break
    order = ("clean", "recipe") if i % 2 == 0 else ("recipe", "clean")
    for kind in order:
      times[kind].append(call(kind))
  clean, adv = (np.asarray(times[k]) for k in ("clean", "recipe"))
  q = lambda a: [float(v) for v in np.percentile(a, [25, 75])]
  ratios = adv / clean  # each recipe call over the clean call beside it
  mem, clean_mem = memory(compiled["recipe"]), memory(compiled["clean"])
  return {
    "step_time_s": float(np.median(adv)),
    "clean_step_time_s": float(np.median(clean)),
    "relative_step_time": float(np.median(ratios)),
    "relative_step_time_range": q(ratios),
    "step_time_iqr_s": q(adv),
    "clean_step_time_iqr_s": q(clean),
    "timed_pairs": len(adv),
    "timing": (
      f"{len(adv)} interleaved calls of each step after {warmup} warm-up "
      f"calls, batch {run.config.batch_size}; times are medians, the "
      f"relative time the median ratio of neighbouring calls"
    ),
    "peak_memory_bytes": mem,
    "clean_peak_memory_bytes": clean_mem,
    "relative_memory": (mem / clean_mem) if mem and clean_mem else None,
  }


NOT_TIMED = "not measured in this evaluation"


def _training_cost(workdir: str) -> Dict:
  """The cost section of the training run's own report.json, marked as such, or a note
  that the steps were not timed."""
  path = os.path.join(workdir, "report.json")
  cost = None
  if os.path.exists(path):
    try:
      with open(path, encoding="utf-8") as f:
        cost = json.load(f).get("cost")
    except (OSError, ValueError):
      cost = None
  if not cost:
    return {
      "measured": f"{NOT_TIMED} (no training report to carry; "
      "evaluate with time_steps=True / --time_steps to time the steps)"
    }
  return dict(
    cost,
    measured=f"{NOT_TIMED}: the training run's own numbers (its "
    "report.json); time_steps=True / --time_steps re-times them",
  )


def _describe_source(c) -> str:
  """The training views in the report's setup: the source with its options (an attack's
  label names its budget), the eps, MaxUp and the PASS filter."""
  ta = c.train_attack
  name = _views.parse_source(ta.name)[0]
  options = _views.source_options(ta.name)
  if name == "hard_positives":
    text = f"hard positives {options['directions']} x{options['scale']:g}"
  elif name in ("ace", "augmix"):
    text = f"{ta.name}"
  elif name == "diffaugment":
    text = f"diffaugment ({','.join(options['policy'])})"
  elif name == "free":
    text = f"free eps {ta.eps:g} (m = {options['replays']} replays)"
  elif _objectives.build_objective(c.objective).attack is not None and c.recipe != "standard":
    objective = _objectives.parse_objective(c.objective)[0]
    text = f"the {objective} objective's own attack (from {ta.name}) at eps {ta.eps:g}"
  else:
    text = f"{attacks.attack_label(ta.name)} at eps {ta.eps:g}"
    if ta.curriculum == "steps":
      text += " (curriculum: steps 1 ->)"
  if ta.maxup > 1:
    text += f", MaxUp m = {ta.maxup}"
  if ta.pass_tau > 0:
    text += f", PASS >= {ta.pass_tau:g}"
  return text


def _mean_last_epoch(records: List[Dict], key: str, steps_per_epoch: int) -> Optional[float]:
  vals = [r[key] for r in records if r.get("kind") == "train" and key in r]
  return float(np.mean(vals[-steps_per_epoch:])) if vals else None


def final_report(
  run: Run,
  state: TrainState,
  workdir: str,
  *,
  train_time: float,
  eval_name: Optional[str] = None,
  time_steps: bool = True,
  events: Optional["_events.EventWriter"] = None,
) -> Dict:
  """The evaluation suite on the test set; report.json/.md and figures in the workdir,
  or, for a named evaluation of a checkpoint, in `workdir/eval/<eval_name>` (replaced
  whole). Returns the report with `output_dir`, the folder written (not in report.json).

  The cost section is `measure_cost` when `time_steps`, else the training report's own
  (marked "not measured in this evaluation"). The training's report (no `eval_name`)
  also goes to TensorBoard at the last step (`test/...`, see `report_scalars`) through
  `events`, the training's writer, so that a launch writes one event file.
  """
  from advjax import eval as ev_lib  # pylint: disable=import-outside-toplevel

  c = run.config
  variables = jax.device_get(state.variables())
  logits_fn = models.make_logits_fn(run.model, variables)
  baseline = None
  if c.eval.baseline_workdir:
    path = os.path.join(c.eval.baseline_workdir, "report.json")
    if not os.path.exists(path):
      raise FileNotFoundError(
        f"config.eval.baseline_workdir: no report.json in {c.eval.baseline_workdir!r}."
      )
    with open(path, encoding="utf-8") as f:
      baseline = json.load(f)
  report = ev_lib.evaluate(
    logits_fn,
    run.splits["test"],
    c.eval,
    progress=c.progress,
    baseline_report=baseline,
    name=c.name,
  )
  records = _read_records(os.path.join(workdir, "metrics.jsonl"), int(state.step))
  cost = measure_cost(run, state) if time_steps else _training_cost(workdir)
  steps = int(state.step)
  report.update(
    setup={
      "dataset": c.dataset,
      "model": c.model,
      "dtype": c.dtype,
      "train augmentation": c.train_augment,
      "recipe": c.recipe,
      "train attack": _describe_source(c) if run.adversarial else "none",
      "NoisyMix": (
        f"{c.noisymix.views} views, JSD x{c.noisymix.jsd_weight:g}, mixup "
        f"alpha {c.noisymix.mixup_alpha:g}, noise {c.noisymix.noise}"
      )
      if run.noisymix
      else "off",
      "init from": c.init_workdir or "scratch",
      "train extra": (f"{c.train_extra} ({run.num_extra} images)" if c.train_extra else "none"),
      "eps schedule": c.eps_schedule if run.adversarial else "-",
      "epochs": c.num_epochs,
      "batch size": c.batch_size,
      "optimizer": f"{c.optimizer} lr {c.learning_rate:g} ({c.lr_schedule})",
      "input": (f"grain, {c.input.workers} workers" if run.grain else "in memory"),
      "weight decay": c.weight_decay,
      "dropout": c.model_kwargs.get("dropout_rate", 0.0),
      "devices": run.mesh.devices.size,
      "seed": c.seed,
      **(
        {"evaluation": f"{eval_name} (checkpoint at step {steps})"} if eval_name is not None else {}
      ),
    },
    train={
      "steps": steps,
      "time_s": train_time,
      "examples_per_s": steps * c.batch_size / max(train_time, 1e-9),
      "final_alpha": float(state.alpha),
      "final_eps": float(state.eps),
      "pass_kept": _mean_last_epoch(records, "pass_kept", run.steps_per_epoch),
    },
    cost=cost,
  )
  out = workdir if eval_name is None else os.path.join(workdir, "eval", _check_eval_name(eval_name))
  if _distributed.is_primary():
    written = ev_lib.write_evaluation(
      out, report, training_records=records, replace=eval_name is not None
    )
  else:  # every process evaluated the same examples; process 0 writes
    written = {k: v for k, v in report.items() if not k.startswith("_")}
  if eval_name is None and events is not None:
    events.scalars(steps, report_scalars(report), prefix="test/")
    events.flush()
  _distributed.sync("advjax: report written")
  return dict(written, output_dir=out)


def _number(value) -> Optional[float]:
  if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
    return None
  value = float(value)
  return value if np.isfinite(value) else None


def report_scalars(report: Dict) -> Dict[str, float]:
  """The final evaluation's numbers as TensorBoard scalars (names without a prefix):
  `clean_accuracy`; `<attack>_eps<eps>` for each attack of the battery at its eps and
  each point of the accuracy-vs-eps curves; `<attack>` for an attack without eps;
  `corruption_mean` (mean accuracy over the corruptions) when they were evaluated."""
  out = {}
  clean = _number(report.get("clean_accuracy"))
  if clean is not None:
    out["clean_accuracy"] = clean
  for name, a in (report.get("attacks") or {}).items():
    if not isinstance(a, dict) or _number(a.get("accuracy")) is None:
      continue
    eps = _number(a.get("eps"))
    out[name if eps is None else f"{name}_eps{eps:g}"] = _number(a["accuracy"])
  curve = report.get("accuracy_vs_eps") or {}
  grid = curve.get("eps") or []
  for name, accs in curve.items():
    if name == "eps" or not isinstance(accs, (list, tuple)):
      continue
    for e, acc in zip(grid, accs):
      if _number(e) is not None and _number(acc) is not None:
        out[f"{name}_eps{float(e):g}"] = _number(acc)
  mean = _number((report.get("corruptions") or {}).get("mean"))
  if mean is not None:
    out["corruption_mean"] = mean
  return out
