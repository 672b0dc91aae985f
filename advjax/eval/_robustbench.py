"""RobustBench's evaluation protocol (Croce et al. 2021, "RobustBench: a standardized
adversarial robustness benchmark", NeurIPS Datasets and Benchmarks; robustbench 1.1.1).

What a leaderboard entry is measured on and how it is written down:
- threat models by name, with eps kept as exact fractions (8/255, not 0.0313...);
- the first `n_examples` test points in dataset order (CIFAR: the test split's order, at
  most 10,000; ImageNet: RobustBench's fixed list of 5,000 validation images, read from
  the `robustbench` package's `helper_files`), clean accuracy on the same points;
- AutoAttack "standard" (APGD-CE, APGD-T and FAB-T with 9 targets, Square with 5,000
  queries, 100 iterations), the worst case per point;
- the entry: `model_info.json` with the fields of robustbench's `ModelInfo`, accuracies as
  percentages with two decimals in strings, eps as a string such as "8/255".
"""

import dataclasses
import fractions
import functools
import importlib.util
import json
import os
import time
from typing import Callable, Dict, List, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from advjax import _files
from advjax import losses
from advjax import metrics
from advjax import models
from advjax import attacks as attacks_lib
from advjax.eval import _corruption

# (dataset, norm) -> eps. MNIST is not on RobustBench's leaderboard; its Linf 0.3 is the
# budget of the AutoAttack paper and of Madry et al., kept here for the embedded data.
THREAT_MODELS = {
  ("cifar10", "Linf"): fractions.Fraction(8, 255),
  ("cifar10", "L2"): fractions.Fraction(1, 2),
  ("cifar100", "Linf"): fractions.Fraction(8, 255),
  ("cifar100", "L2"): fractions.Fraction(1, 2),
  ("imagenet", "Linf"): fractions.Fraction(4, 255),
  ("mnist", "Linf"): fractions.Fraction(3, 10),
}
LEADERBOARD_DATASETS = ("cifar10", "cifar100", "imagenet")
# RobustBench evaluates at most this many test points per dataset.
MAX_EXAMPLES = {"cifar10": 10000, "cifar100": 10000, "imagenet": 5000, "mnist": 10000}
# The fields of robustbench.utils.ModelInfo, in its order.
MODEL_INFO_FIELDS = (
  "link",
  "name",
  "authors",
  "additional_data",
  "number_forward_passes",
  "dataset",
  "venue",
  "architecture",
  "eps",
  "clean_acc",
  "reported",
  "corruptions_acc",
  "corruptions_acc_3d",
  "corruptions_mce",
  "corruptions_mce_3d",
  "autoattack_acc",
  "footnote",
)


@dataclasses.dataclass(frozen=True)
class ThreatModel:
  """A dataset, a norm ("Linf" or "L2", RobustBench's spelling) and an exact eps."""

  dataset: str
  norm: str
  eps: fractions.Fraction

  @property
  def eps_string(self) -> str:
    """eps as RobustBench writes it: "8/255", "4/255", "0.5" (a decimal when one is
    exact, else the fraction)."""
    decimal = str(float(self.eps))
    if fractions.Fraction(decimal) == self.eps:
      return decimal
    return f"{self.eps.numerator}/{self.eps.denominator}"

  @property
  def standard(self) -> bool:
    """Whether this is the protocol's own threat model (`THREAT_MODELS`) of its
    dataset and norm."""
    return THREAT_MODELS.get((self.dataset, self.norm)) == self.eps

  @property
  def attack_norm(self) -> str:
    """The norm as advjax's attacks spell it ("linf", "l2")."""
    return self.norm.lower()


def parse_eps(text) -> fractions.Fraction:
  """eps given as a decimal or a fraction ("0.1", "8/255", 0.25) as an exact Fraction.

  Raises:
    ValueError: if `text` is not a positive number or fraction.
  """
  try:
    eps = fractions.Fraction(str(text).strip())
  except (ValueError, ZeroDivisionError):
    raise ValueError(
      f"eps={text!r} is not a number; give a decimal or a fraction, e.g. 0.1 or 8/255."
    ) from None
  if eps <= 0:
    raise ValueError(f"eps={text!r}: must be positive.")
  return eps


def threat_model(dataset: str, norm: str, eps=None) -> ThreatModel:
  """The threat model of `dataset` ("cifar10", "cifar100", "imagenet", "mnist") and `norm`
  ("Linf" or "L2"), at the protocol's eps or at a custom `eps`.

  Args:
    dataset: the dataset's name.
    norm: "Linf" or "L2" (any case).
    eps: None for the protocol's eps (`THREAT_MODELS`); else a custom budget, a number
      or a string such as "0.1" or "8/255" (`parse_eps`): the result is then not the
      leaderboard's threat model (`ThreatModel.standard` says whether it is).

  Raises:
    ValueError: for a pair RobustBench does not define (without `eps`), an unknown
      dataset or norm, or a bad `eps`.
  """
  key = (str(dataset).lower(), {"linf": "Linf", "l2": "L2"}.get(str(norm).lower(), norm))
  if eps is not None:
    datasets = sorted({d for d, _ in THREAT_MODELS})
    if key[0] not in datasets or key[1] not in ("Linf", "L2"):
      raise ValueError(
        f"threat_model: dataset={dataset!r}, norm={norm!r}; expected a "
        f"dataset of {datasets} and norm Linf or L2."
      )
    return ThreatModel(key[0], key[1], parse_eps(eps))
  if key not in THREAT_MODELS:
    known = ", ".join(f"{d}/{n} (eps {e})" for (d, n), e in THREAT_MODELS.items())
    raise ValueError(
      f"threat_model: no threat model for dataset={dataset!r}, "
      f"norm={norm!r}; expected one of {known}."
    )
  return ThreatModel(key[0], key[1], THREAT_MODELS[key])


def imagenet_test_ids() -> List[str]:
  """RobustBench's 5,000 ImageNet validation images, "<wnid>/<file>.JPEG", in its order.

  Read from the installed `robustbench` package (`helper_files/imagenet_test_image_ids.txt`)
  without importing it (its `__init__` needs its evaluation dependencies).

  Raises:
    ModuleNotFoundError: when robustbench is not installed (`pip install --no-deps
      robustbench==1.1.1`).
  """
  spec = importlib.util.find_spec("robustbench")
  if spec is None or not spec.submodule_search_locations:
    raise ModuleNotFoundError(
      "RobustBench's ImageNet list of 5,000 validation images ships in the robustbench "
      "package: pip install --no-deps robustbench==1.1.1",
      name="robustbench",
    )
  path = os.path.join(
    spec.submodule_search_locations[0], "helper_files", "imagenet_test_image_ids.txt"
  )
  with open(path, encoding="utf-8") as f:
    return [line.strip() for line in f if line.strip()]


def first_points(images: np.ndarray, labels: np.ndarray, n_examples: int, dataset: str):
  """The first `n_examples` points in dataset order, checked against RobustBench's limit.

  Raises:
    ValueError: if `n_examples` is not positive, is over the dataset's limit or over the
      points given.
  """
  if not isinstance(n_examples, (int, np.integer)) or n_examples < 1:
    raise ValueError(f"n_examples must be a positive int; got {n_examples!r}.")
  limit = MAX_EXAMPLES.get(dataset, len(images))
  if n_examples > limit:
    raise ValueError(
      f"n_examples={n_examples}: RobustBench evaluates {dataset} on at most {limit} test points."
    )
  if n_examples > len(images):
    raise ValueError(f"n_examples={n_examples} but the test data has only {len(images)} points.")
  return images[:n_examples], labels[:n_examples]


def run_autoattack(
  key: jax.Array,
  logits_fn: Callable,
  images: np.ndarray,
  labels: np.ndarray,
  threat: ThreatModel,
  *,
  version: str = "standard",
  attacks: Optional[Sequence] = None,
  batch_size: int = 500,
  num_steps: int = 100,
  num_queries: int = 5000,
  state_dir: Optional[str] = None,
  progress: Optional[Callable[[int], None]] = None,
) -> Dict:
  """Clean and AutoAttack accuracy of `logits_fn` on `images`, stage by stage, with
  per-point records; resumable.

  Like the reference code, each stage runs only on the points still robust after the
  earlier ones, and so does each target class of APGD-T and FAB-T after the earlier
  targets: they are gathered (on the host, by index) into batches of `batch_size`, the last one
  padded to a power of two (copies of its last point under that point's id), so a
  stage compiles for at most log2(batch_size) + 2 sizes. Each example's randomness
  comes from its index in `images` (`example_ids`), the stage index and the target
  (`attacks.autoattack_stage`), so every point's verdict and adversarial image are
  those of the whole-batch `attacks.autoattack` (APGD-T and FAB-T with 9 targets),
  whatever `batch_size` (up to float rounding that differs with the batch size: FAB's
  images within 1e-6, see tests/test_attacks_invariance.py).

  Resuming: with `state_dir`, every finished batch of every stage is saved there
  atomically (`<pass>_<batch>.npz`: the ids, which broke, their images) beside a
  `manifest.json` of the settings; a later call with the same settings replays the
  saved batches and computes only the rest, ending with the same result as an
  uninterrupted run (the batches of a pass are a function of the saved earlier
  passes; `<pass>` counts the clean pass, the stages and APGD-T's and FAB-T's targets).

  Args:
    key: a JAX PRNG key.
    logits_fn: `images [B, H, W, C] in [0, 1] -> logits [B, K]`; for version "rand", a
      randomized model `f(key, images) -> logits` (`attacks.autoattack_model`).
    images: float32 [N, H, W, C] in [0, 1].
    labels: int [N].
    threat: the threat model (its eps and norm).
    version: "standard", "plus", "rand" or "custom" (`attacks.AUTOATTACK_VERSIONS`).
    attacks: "custom" only: the stages, names or (name, restarts) pairs
      (`attacks.autoattack_stages`).
    batch_size: examples per compiled call.
    num_steps: APGD and FAB iterations (100: the standard version).
    num_queries: Square's queries (5,000: the standard version).
    state_dir: folder for the resumable state (created); None keeps nothing.
    progress: called with the number of points of each finished batch (clean pass and
      stages).

  Returns:
    {"clean_accuracy", "robust_accuracy", "robust_accuracy_by_stage" ({stage: accuracy
    after it}), "stages" ([name, ...]), "broken_by" ([N] int: -1 misclassified clean,
    i the stage that broke the point, len(stages) robust), "records" (per point:
    "id", "label", "broken_by", "linf" and "l2" (norms of x_adv - x), "margin" (logit of
    the label minus the largest other at x_adv; < 0 exactly where broken)), "images"
    ([N, H, W, C] x_adv, the clean image where robust), "seconds" (the time of every
    batch, summed over the invocations that computed them: after a resume, the earlier
    invocations' saved batches count with the time they took), "seconds_this_invocation",
    "num_examples"}.

  Raises:
    ValueError: for a bad `batch_size`, mismatched `images` and `labels`, an unknown
      version, or a `state_dir` saved with other settings.
  """
  n = len(images)
  if len(labels) != n:
    raise ValueError(f"labels: expected {n} labels for {n} images; got {len(labels)}.")
  if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
    raise ValueError(f"batch_size must be a positive int; got {batch_size!r}.")
  stages = attacks_lib.autoattack_stages(version, attacks=attacks)
  model = attacks_lib.autoattack_model(key, logits_fn, version=version)
  eps, norm = float(threat.eps), threat.attack_norm
  images = np.asarray(images, np.float32)
  labels = np.asarray(labels)
  if state_dir is not None:
    _check_manifest(
      state_dir,
      dict(
        version=version,
        stages=[list(s) for s in stages],
        eps=eps,
        norm=norm,
        batch_size=int(batch_size),
        num_steps=int(num_steps),
        num_queries=int(num_queries),
        key=np.asarray(jax.random.key_data(key)).ravel().tolist(),
        n=n,
        fingerprint=_fingerprint(images, labels),
        # the stages whose targets are passes of their own (the layout of the saved files)
        targets_in_turn=list(attacks_lib.AUTOATTACK_TARGETED_STAGES),
      ),
    )

  # the model is an argument: its weights are inputs, one program per architecture
  wrong = models.jit_with_model(lambda f, x, y: jnp.argmax(f(x), -1) != y, model)

  # Pass 0 predicts the clean points; then one pass per stage, and one per target class
  # for APGD-T and FAB-T (their targets run in turn on the points still robust).
  num_targets = min(9, int(jax.eval_shape(model, jnp.asarray(images[:1])).shape[-1]) - 1)
  passes = [(-1, None)]
  for i, (name, _) in enumerate(stages):
    passes += (
      [(i, t) for t in range(num_targets)]
      if name in attacks_lib.AUTOATTACK_TARGETED_STAGES
      else [(i, None)]
    )
  stage_fns = [
    models.jit_with_model(
      functools.partial(  # the target is traced: one program a size
        lambda f, x, y, ids, target, stage, index: attacks_lib.autoattack_stage(
          key,
          f,
          x,
          y,
          stage=stage,
          index=index,
          eps=eps,
          norm=norm,
          num_steps=num_steps,
          num_queries=num_queries,
          example_ids=ids,
          target=target,
        ),
        stage=stage,
        index=i,
      ),
      model,
    )
    for i, stage in enumerate(stages)
  ]

  robust_code = len(stages)
  broken_by = np.full(n, robust_code, np.int32)
  x_adv = images.copy()
  t0 = time.perf_counter()
  seconds = 0.0
  for p, (stage_index, target) in enumerate(passes):
    todo = np.arange(n) if p == 0 else np.flatnonzero(broken_by == robust_code)
    for j, start in enumerate(range(0, len(todo), batch_size)):
      ids = todo[start : start + batch_size]
      path = None if state_dir is None else os.path.join(state_dir, f"{p:02d}_{j:06d}.npz")
      if path is not None and os.path.exists(path):
        with np.load(path) as saved:
          if not np.array_equal(saved["ids"], ids):
            raise ValueError(
              f"state_dir: {path} holds other points than this run's; "
              f"remove {state_dir} to start afresh."
            )
          hit, x_new = saved["broken"], saved["images"]
          # the time this batch took in the invocation that computed it
          batch_seconds = float(saved["seconds"]) if "seconds" in saved else 0.0
      else:
        t_batch = time.perf_counter()
        padded = _pad_to_bucket(ids, batch_size)
        xb, yb = jnp.asarray(images[padded]), jnp.asarray(labels[padded])
        if p == 0:
          hit = np.asarray(wrong(xb, yb))[: len(ids)]
          x_new = images[ids][hit]
        else:
          out = stage_fns[stage_index](
            xb, yb, jnp.asarray(padded, jnp.int32), None if target is None else jnp.int32(target)
          )
          hit = np.asarray(wrong(out, yb))[: len(ids)]
          x_new = np.asarray(out)[: len(ids)][hit]
        batch_seconds = time.perf_counter() - t_batch
        if path is not None:
          _files.atomic_write(
            path,
            functools.partial(_save_npz, ids=ids, broken=hit, images=x_new, seconds=batch_seconds),
          )
      seconds += batch_seconds
      broken_by[ids[hit]] = stage_index
      if p:
        x_adv[ids[hit]] = x_new
      if progress is not None:
        progress(len(ids))
  this_invocation = time.perf_counter() - t0
  records = _point_records(model, images, x_adv, labels, broken_by, batch_size)
  by_stage = {s: float(np.mean(broken_by > i)) for i, (s, _) in enumerate(stages)}
  return {
    "clean_accuracy": float(np.mean(broken_by >= 0)),
    "robust_accuracy": float(np.mean(broken_by == robust_code)),
    "robust_accuracy_by_stage": by_stage,
    "stages": [s for s, _ in stages],
    "broken_by": broken_by,
    "records": records,
    "images": x_adv,
    "seconds": seconds,
    "seconds_this_invocation": this_invocation,
    "num_examples": n,
  }


def _pad_to_bucket(ids: np.ndarray, batch_size: int) -> np.ndarray:
  """`ids` padded with its last id to batch_size or the next power of two below it."""
  m = len(ids)
  size = batch_size if m == batch_size else min(batch_size, 1 << (m - 1).bit_length())
  return np.concatenate([ids, np.full(size - m, ids[-1], ids.dtype)])


def _save_npz(f, **arrays):
  np.savez(f, **arrays)


def _fingerprint(images: np.ndarray, labels: np.ndarray) -> str:
  import hashlib  # pylint: disable=import-outside-toplevel

  h = hashlib.sha256(np.ascontiguousarray(images).tobytes())
  h.update(np.ascontiguousarray(labels).astype(np.int64).tobytes())
  return h.hexdigest()


def _check_manifest(state_dir: str, manifest: Dict) -> None:
  os.makedirs(state_dir, exist_ok=True)
  path = os.path.join(state_dir, "manifest.json")
  if os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      saved = json.load(f)
    if saved != manifest:
      diff = sorted(k for k in manifest if saved.get(k) != manifest[k])
      raise ValueError(
        f"state_dir: {state_dir} was saved by an evaluation with other "
        f"settings ({', '.join(diff)}); remove it or use another folder."
      )
    return
  _files.atomic_write(path, lambda f: f.write(json.dumps(manifest).encode()))


def _point_records(model, images, x_adv, labels, broken_by, batch_size) -> Dict:
  def measure(f, x, x0, y):
    # the margin z_y - max_{j != y} z_j is minus the (uncapped) CW margin
    margin = -losses.cw_margin(f(x), y, confidence=jnp.inf)
    return metrics.linf_norm(x, x0), metrics.l2_norm(x, x0), margin

  measure = models.jit_with_model(measure, model)

  n = len(images)
  out = [np.empty(n, np.float32) for _ in range(3)]
  for start in range(0, n, batch_size):
    ids = _pad_to_bucket(np.arange(start, min(start + batch_size, n)), batch_size)
    vals = measure(jnp.asarray(x_adv[ids]), jnp.asarray(images[ids]), jnp.asarray(labels[ids]))
    for o, v in zip(out, vals):
      o[start : start + batch_size] = np.asarray(v)[: min(batch_size, n - start)]
  return {
    "id": np.arange(n),
    "label": np.asarray(labels),
    "broken_by": broken_by,
    "linf": out[0],
    "l2": out[1],
    "margin": out[2],
  }


def write_points(workdir: str, records: Dict, stages: Sequence[str]) -> None:
  """Writes the per-point records of `run_autoattack` as `points.npz` (one array per
  field, and `stages`) and `points.jsonl` (one JSON object per point: id, label,
  broken_by, broken_by_stage ("clean" for a clean mistake, the stage's name, or null
  for a robust point), linf, l2, margin), each atomically."""
  os.makedirs(workdir, exist_ok=True)
  names = list(stages)
  _files.atomic_write(
    os.path.join(workdir, "points.npz"),
    functools.partial(
      _save_npz, stages=np.asarray(names), **{k: np.asarray(v) for k, v in records.items()}
    ),
  )
  lines = []
  for i in range(len(records["id"])):
    b = int(records["broken_by"][i])
    lines.append(
      json.dumps(
        {
          "id": int(records["id"][i]),
          "label": int(records["label"][i]),
          "broken_by": b,
          "broken_by_stage": "clean" if b < 0 else (names[b] if b < len(names) else None),
          "linf": float(records["linf"][i]),
          "l2": float(records["l2"][i]),
          "margin": float(records["margin"][i]),
        }
      )
    )
  _files.atomic_write(
    os.path.join(workdir, "points.jsonl"), lambda f: f.write(("\n".join(lines) + "\n").encode())
  )


def model_info(
  threat: ThreatModel,
  *,
  clean_accuracy: float,
  autoattack_accuracy: Optional[float] = None,
  architecture: str = "",
  name: Optional[str] = None,
  link: Optional[str] = None,
  authors: Optional[str] = None,
  venue: Optional[str] = None,
  additional_data: bool = False,
  number_forward_passes: int = 1,
  reported: Optional[float] = None,
  corruptions_accuracy: Optional[float] = None,
  footnote: Optional[str] = None,
) -> Dict:
  """A leaderboard entry in RobustBench's `model_info` schema (every `ModelInfo` field).

  Accuracies are fractions in [0, 1] here and percentages with two decimals, as strings,
  in the entry (RobustBench's `update_json`).
  """
  pct = lambda a: None if a is None else str(round(100.0 * float(a), 2))
  info = dict.fromkeys(MODEL_INFO_FIELDS)
  info.update(
    link=link,
    name=name,
    authors=authors,
    additional_data=bool(additional_data),
    number_forward_passes=int(number_forward_passes),
    dataset=threat.dataset,
    venue=venue,
    architecture=architecture,
    eps=threat.eps_string if threat.norm in ("Linf", "L2") else None,
    clean_acc=pct(clean_accuracy),
    reported=pct(reported),
    autoattack_acc=pct(autoattack_accuracy),
    corruptions_acc=pct(corruptions_accuracy),
    footnote=footnote,
  )
  return info


def model_info_json(info: Dict) -> str:
  """The entry as RobustBench writes it (indent 2, its field order)."""
  unknown = set(info) - set(MODEL_INFO_FIELDS)
  if unknown:
    raise ValueError(
      f"model_info: fields {sorted(unknown)} are not in RobustBench's "
      f"schema {list(MODEL_INFO_FIELDS)}."
    )
  return json.dumps({k: info.get(k) for k in MODEL_INFO_FIELDS}, indent=2) + "\n"


def load_imagenet_points(root: str, n_examples: int):
  """The first `n_examples` of RobustBench's 5,000 ImageNet validation images, read from
  `root/<wnid>/<file>` and preprocessed as RobustBench's "Res256Crop224" (shorter side
  resized to 256, bilinear; centre crop 224): float32 [n, 224, 224, 3] in [0, 1], int
  labels (the index of the wnid among the sorted class folders of `root`).

  Raises:
    ValueError: if `root` is not a folder or an image of the list is missing there.
    ModuleNotFoundError: without robustbench (see `imagenet_test_ids`).
  """
  from advjax import data  # pylint: disable=import-outside-toplevel

  if not os.path.isdir(root):
    raise ValueError(
      f"data: {root!r} is not a folder; expected ImageNet's validation set "
      f"as <root>/<wnid>/<file>.JPEG."
    )
  ids = imagenet_test_ids()
  if not 1 <= n_examples <= len(ids):
    raise ValueError(f"n_examples={n_examples}: RobustBench's ImageNet list has {len(ids)} images.")
  classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
  index = {c: i for i, c in enumerate(classes)}
  images, labels = [], []
  for rel in ids[:n_examples]:
    path = os.path.join(root, rel)
    wnid = rel.split("/")[0]
    if wnid not in index or not os.path.isfile(path):
      raise ValueError(
        f"data: {path!r}, image {len(images)} of RobustBench's ImageNet "
        f"list, is missing; point --data at the validation folder with one "
        f"sub-folder per wnid."
      )
    with open(path, "rb") as f:
      image = data.decode_image(f.read(), 3, path)
    images.append(data.resize_center_crop(image, resize=256, crop=224))
    labels.append(index[wnid])
  return (np.stack(images).astype(np.float32) / 255.0), np.asarray(labels, np.int32)


def corruption_accuracy(
  key: jax.Array,
  logits_fn: Callable,
  images: np.ndarray,
  labels: np.ndarray,
  *,
  dataset: str,
  batch_size: int = 500,
  severities: Sequence[int] = (1, 2, 3, 4, 5),
) -> List[Dict]:
  """Accuracy per (corruption, severity) over the 15 common corruptions (Hendrycks &
  Dietterich 2019) of the benchmark points, with advjax's implementation (CIFAR-10-C's
  severity tables for CIFAR and MNIST, ImageNet-C's for ImageNet).

  Returns:
    [{"corruption", "severity", "accuracy"}], RobustBench's corruption table's rows.
  """
  from advjax import augment  # pylint: disable=import-outside-toplevel

  table = _corruption.corruption_accuracies(
    logits_fn,
    images,
    labels,
    names=augment.corruption_names("common"),
    severities=severities,
    tables="imagenet" if dataset == "imagenet" else "cifar10",
    batch_size=batch_size,
    chunk=batch_size,
    key_of=lambda c, s: jax.random.fold_in(jax.random.fold_in(key, c), s),
  )
  return [
    {"corruption": name, "severity": s, "accuracy": a}
    for name, by_severity in table.items()
    for s, a in by_severity.items()
  ]


def write_benchmark(
  workdir: str,
  *,
  details: Dict,
  entry: Dict,
  records: Dict,
  stages: Sequence[str],
  corruptions: Optional[List[Dict]] = None,
) -> None:
  """Writes benchmark.json, points.npz and points.jsonl (`write_points`), corruptions.csv
  (when given) and, last, model_info.json into `workdir`, each file atomically: a killed
  run leaves no entry."""
  import csv  # pylint: disable=import-outside-toplevel
  import io  # pylint: disable=import-outside-toplevel

  os.makedirs(workdir, exist_ok=True)
  write_points(workdir, records, stages)
  _files.atomic_write(
    os.path.join(workdir, "benchmark.json"),
    lambda f: f.write((json.dumps(details, indent=2) + "\n").encode()),
  )
  if corruptions is not None:
    buf = io.StringIO()
    writer = csv.DictWriter(
      buf, fieldnames=["corruption", "severity", "accuracy"], lineterminator="\n"
    )
    writer.writeheader()
    writer.writerows(corruptions)
    _files.atomic_write(
      os.path.join(workdir, "corruptions.csv"), lambda f: f.write(buf.getvalue().encode())
    )
  _files.atomic_write(
    os.path.join(workdir, "model_info.json"), lambda f: f.write(model_info_json(entry).encode())
  )
