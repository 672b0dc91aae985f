"""Sources of the generated training views, by name, and the losses built on them.

A source is `(key, logits_fn, images [B, H, W, C], labels [B], eps) -> Views`: the
adversarial or augmented images (N = B * per-example views), their labels and an
optional weight per view (the PASS filter and invalid hard positives give weight
0). The train step adds `(1 - alpha) * view_loss(...)` to its clean term.

A config names a source with its options in one string, as attacks are named
(`attacks.parse_attack`): `config.train_attack.name = "pgd(num_steps=7)"`. Sources:
every attack of the registry (`attacks.attack_names()`: "fgsm", "fgsm_rs" (Wong et
al. 2020), "pgd" (Madry et al. 2018), "apgd_ce", ..., and any attack added with
`attacks.register`; one view per image, the attack's own options), and the sources
defined here, each a builder whose keyword-only arguments are its options:
"hard_positives" (Rozsa, Rudd & Boult 2016: minimal adversarials along FGS, FGV or
hot/cold directions, scaled; HC-D-9-1.05 is `hard_positives(directions="HC-D-9",
scale=1.05)`), "ace" (Zhao et al. 2020), "diffaugment" (Zhao et al. 2020), "augmix"
(Hendrycks et al. 2020). "free" (Shafahi et al. 2019) is a step of its own
(`make_free_train_step`); its options are its replays and the PGD steps of its
validation. MaxUp (Gong et al. 2021) over any source: `maxup` > 1 draws that many
copies and trains on the worst per example.
"""

import functools
import inspect
from typing import Callable, Dict, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp

from advjax import _validate
from advjax import attacks, augment, losses, metrics


class Views(NamedTuple):
  """Generated views of a batch of B images.

  Attributes:
    images: [N, H, W, C] in [0, 1], N = B * per, example-major (view j of image
      i is row i * per + j).
    labels: [N] int labels.
    weight: [N] float32 in {0, 1} (kept or not), or None when every view counts.
  """

  images: jax.Array
  labels: jax.Array
  weight: Optional[jax.Array] = None


def attack_source(attack_fn: Callable) -> Callable:
  """An eps-bounded attack `(key, logits_fn, x, y, eps) -> x_adv` as a view source
  (one view per image, every view counts)."""
  return lambda key, logits_fn, x, y, eps: Views(attack_fn(key, logits_fn, x, y, eps), y)


class PassFilter(NamedTuple):
  """The PASS filter of the views: keep a view only where PASS(view, image) >= tau
  (tau 0: no filter), PASS with `iterations` ECC iterations."""

  tau: float = 0.0
  iterations: int = 20


def _per_example(fn):
  return lambda k, x: jax.vmap(fn)(jax.random.split(k, x.shape[0]), x)


def _hard_positives(pf: PassFilter, *, directions: str = "HC-D-9", scale: float = 1.0):
  """Hard positives: `directions` "FGS", "FGV", "HC-D-k" or "HC-S-k", scaled by `scale`
  (1.0 = the minimal adversarial; Rozsa et al. use 1.05 and 1.10). eps is not used: the
  search finds the scale."""
  attacks.parse_hard_positive_type(directions)
  if not scale > 0:
    raise ValueError(f"`scale` must be > 0; got {scale}.")

  def generate(key, logits_fn, x, y, eps):
    del key, eps
    dirs = attacks.hard_positive_directions(logits_fn, x, y, directions)
    hp = attacks.hard_positives(
      logits_fn,
      x,
      y,
      dirs,
      scales=(scale,),
      compute_pass=pf.tau > 0,
      pass_iterations=pf.iterations,
    )
    per = dirs.shape[1]
    weight = hp.valid.reshape(-1).astype(jnp.float32)
    if pf.tau > 0:
      weight = weight * (hp.pass_score.reshape(-1) >= pf.tau)
    return Views(hp.images.reshape((-1,) + x.shape[1:]), jnp.repeat(y, per), weight)

  return generate


def _ace(pf: PassFilter, *, num_steps: int = 7):
  """ACE: `num_steps` Adam steps on the colour filter."""
  del pf
  _validate.check_positive_int(num_steps, "num_steps")
  return lambda key, logits_fn, x, y, eps: Views(
    augment.ace(key, logits_fn, x, y, num_steps=num_steps), y
  )


def _diffaugment(pf: PassFilter, *, policy: Tuple[str, ...] = ("color", "translation", "cutout")):
  """DiffAugment with `policy` (its transforms, in order)."""
  del pf
  policy = _validate.parse_names(
    policy,
    "policy",
    augment.DIFFAUGMENT_POLICIES,
    "DiffAugment policy",
    comma_string=True,
    distinct=False,
  )
  fn = _per_example(functools.partial(augment.diffaugment, policy=policy))
  return lambda key, logits_fn, x, y, eps: Views(fn(key, x), y)


def _augmix(pf: PassFilter, *, severity: float = 3.0):
  """AugMix at operation `severity`."""
  del pf
  fn = _per_example(functools.partial(augment.augmix, severity=severity))
  return lambda key, logits_fn, x, y, eps: Views(fn(key, x), y)


def _free(pf: PassFilter, *, replays: int = 4, num_steps: int = 7):
  """Free adversarial training: each batch replayed `replays` times (m); its validation
  accuracy is measured under PGD with `num_steps` steps."""
  del pf
  _validate.check_positive_int(replays, "replays")
  _validate.check_positive_int(num_steps, "num_steps")
  raise ValueError("free adversarial training is a step of its own: use `make_free_train_step`.")


# The view sources besides the attacks: name -> builder `(pass_filter, **options) -> generate`.
_BUILDERS = {
  "free": _free,
  "hard_positives": _hard_positives,
  "ace": _ace,
  "diffaugment": _diffaugment,
  "augmix": _augmix,
}
VIEW_SOURCES = tuple(_BUILDERS)
SOURCES = attacks.ATTACK_NAMES + VIEW_SOURCES  # the built-in sources


def _is_attack(name: str) -> bool:
  return name in attacks.attack_names()


def _defaults(name: str) -> Dict:
  params = inspect.signature(_BUILDERS[name]).parameters.values()
  return {p.name: p.default for p in params if p.kind == inspect.Parameter.KEYWORD_ONLY}


def parse_source(spec: str) -> Tuple[str, Dict]:
  """`"hard_positives(directions='HC-D-9', scale=1.05)"` -> (name, options given).

  Raises:
    ValueError: for an unknown source or an option it does not take, naming both.
  """
  name, options = _validate.parse_call(spec, "view source")
  if _is_attack(name):
    return attacks.parse_attack(spec)
  if name not in _BUILDERS:
    raise ValueError(
      f"Unknown view source {name!r}; expected an attack ({list(attacks.attack_names())}) "
      f"or one of {list(VIEW_SOURCES)}."
    )
  _validate.check_options("view source", name, options, list(_defaults(name)))
  return name, options


def source_options(spec: str) -> Dict:
  """Every option of the source `spec` names, its defaults updated by those given."""
  name, options = parse_source(spec)
  defaults = attacks.get_attack(name).options if _is_attack(name) else _defaults(name)
  return {**defaults, **options}


def canonical_source(spec: str, **options) -> str:
  """`spec` with `options` set, written with the options that differ from their
  defaults, in signature order: the one spelling of a source (`"pgd(num_steps=7)"` for
  `"pgd(num_restarts=1, num_steps=7)"`)."""
  name, given = parse_source(spec)
  given.update(options)
  defaults = attacks.get_attack(name).options if _is_attack(name) else _defaults(name)
  text = _validate.minimal_call(name, given, defaults)
  parse_source(text)
  return text


def make_source(
  spec: str,
  *,
  attack_fn: Optional[Callable] = None,
  pass_tau: float = 0.0,
  pass_iterations: int = 20,
) -> Callable:
  """A source of training views: `(key, logits_fn, x, y, eps) -> Views`.

  Args:
    spec: a source with its options, `"pgd(num_steps=7)"`, `"diffaugment(policy=('color',
      'cutout'))"` (see the module docstring); not "free".
    attack_fn: for an attack, `(key, logits_fn, x, y, eps) -> x_adv` to use instead of
      `attacks.build_attack(spec)` (e.g. TRADES' own PGD, `make_attack_fn`).
    pass_tau: keep only views with PASS(view, original) >= pass_tau (0 = no filter).
    pass_iterations: ECC iterations of PASS.

  Returns:
    The source (stop_gradient on its outputs).

  Raises:
    ValueError: for an unknown source or option, "free", or pass_tau outside [0, 1].
  """
  name, options = parse_source(spec)
  if not 0.0 <= pass_tau <= 1.0:
    raise ValueError(f"`pass_tau` must be in [0, 1]; got {pass_tau}.")
  pf = PassFilter(float(pass_tau), int(pass_iterations))
  if _is_attack(name):
    generate = attack_source(attack_fn or attacks.build_attack(spec))
  else:
    generate = _BUILDERS[name](pf, **options)

  def source(key, logits_fn, x, y, eps):
    views = generate(key, logits_fn, x, y, eps)
    if pf.tau > 0 and name != "hard_positives":
      keep = metrics.pass_score(views.images, x, num_iterations=pf.iterations) >= pf.tau
      views = views._replace(weight=keep.astype(jnp.float32))
    return jax.tree_util.tree_map(jax.lax.stop_gradient, views)

  return source


def check_source(spec: str) -> None:
  """Raises ValueError for a source `make_source` (or the free step) would reject."""
  name, options = parse_source(spec)
  if name == "free":
    _validate.check_positive_int(source_options(spec)["replays"], "replays")
  elif not _is_attack(name):
    _BUILDERS[name](PassFilter(), **options)


def maxup_views(source: Callable, m: int) -> Callable:
  """`m` independent draws of `source`, concatenated copy-major ([m * N, ...]).

  m = 1 returns `source` itself (same keys, same numbers)."""
  if m == 1:
    return source

  def draw(key, logits_fn, x, y, eps):
    views = [source(jax.random.fold_in(key, j), logits_fn, x, y, eps) for j in range(m)]
    weight = None if views[0].weight is None else jnp.concatenate([v.weight for v in views])
    return Views(
      jnp.concatenate([v.images for v in views]), jnp.concatenate([v.labels for v in views]), weight
    )

  return draw


def view_loss(logits: jax.Array, views: Views, m: int = 1, *, per_view: Optional[jax.Array] = None):
  """Mean cross-entropy of the views, the worst of `m` copies per view (MaxUp),
  weight-0 views excluded.

  Args:
    logits: [m * N, K] logits of `views.images`.
    views: the Views (copy-major when m > 1, see `maxup_views`).
    m: MaxUp copies.
    per_view: [m * N] loss values of the views to reduce instead of their
      cross-entropy (the TRADES KL, the MART loss), or None.

  Returns:
    (loss scalar, accuracy scalar, kept fraction scalar or None).
  """
  ce = losses.cross_entropy(logits, views.labels) if per_view is None else per_view
  correct = losses.accuracy(logits, views.labels)
  if views.weight is None and m == 1:
    return ce.mean(), correct.mean(), None
  ce, correct = ce.reshape(m, -1), correct.reshape(m, -1)
  w = jnp.ones_like(ce) if views.weight is None else views.weight.reshape(m, -1)
  worst = augment.maxup_worst_copy(jnp.where(w > 0, ce, -jnp.inf))
  pick = lambda a: jnp.take_along_axis(a, worst[None], axis=0)[0]
  keep = jnp.max(w, axis=0)
  n = jnp.maximum(keep.sum(), 1.0)
  loss = jnp.sum(jnp.where(keep > 0, pick(ce), 0.0)) / n
  acc = jnp.sum(keep * pick(correct)) / n
  return loss, acc, (None if views.weight is None else keep.mean())


def clean_logits_of_views(logits_clean: jax.Array, num_views: int, m: int = 1) -> jax.Array:
  """[num_views, K]: the clean logits of each view's image, in the views' layout
  (`m` MaxUp copies, copy-major; within a copy view j of image i is row i * per + j).

  Raises:
    ValueError: if `num_views` is not a multiple of m * B.
  """
  b = logits_clean.shape[0]
  if num_views % (m * b):
    raise ValueError(f"{num_views} views are not {m} copies of views of {b} images.")
  per = num_views // (m * b)
  return jnp.tile(jnp.repeat(logits_clean, per, axis=0), (m, 1))


def per_example_correct(logits: jax.Array, views: Views, batch_size: int) -> jax.Array:
  """[B] fraction of each image's views classified correctly (for validation)."""
  return losses.accuracy(logits, views.labels).reshape(batch_size, -1).mean(axis=1)


NOISYMIX_VIEWS = ("augmix", "diffaugment", "identity")


class NoisyMix(NamedTuple):
  """The stability terms of NoisyMix (Erichson et al. 2022) on the clean branch.

  The clean batch and two augmented views of it go through the model as one
  [3B] batch; manifold mixup (one lambda ~ Beta(mixup_alpha, mixup_alpha), one
  permutation and one block among `blocks`, shared by the views) and sparse
  noise (additive `add * v` for view v, multiplicative `mult`, kept with
  probability 1 - sparsity) are injected at that block; the loss is
  `CE(logits_clean, mixed targets) + jsd_weight * JSD(clean, view1, view2)`.
  mixup_alpha = 0 turns mixup off, noise = False the noise; with both off and
  views "augmix" this is AugMix's JSD loss (Hendrycks et al. 2020).

  Attributes:
    views: "augmix", "diffaugment" or "identity" (two copies of the clean batch).
    jsd_weight: weight of the Jensen-Shannon consistency term (12 in both papers).
    mixup_alpha: Beta concentration (1.0 in NoisyMix; 0 = no mixup).
    blocks: candidate hook indices (0 = input; (0, 1, 2) as in NoisyMix).
    noise: inject sparse noise.
    add, mult, sparsity: noise levels (paper: 0.5, 0.5, 0.65).
    severity: AugMix severity; policy: DiffAugment policy.
  """

  views: str = "augmix"
  jsd_weight: float = 12.0
  mixup_alpha: float = 1.0
  blocks: tuple = (0, 1, 2)
  noise: bool = True
  add: float = 0.5
  mult: float = 0.5
  sparsity: float = 0.65
  severity: float = 3.0
  policy: str = "color,translation,cutout"

  def check(self) -> "NoisyMix":
    """Returns self; raises ValueError naming the bad field."""
    if self.views not in NOISYMIX_VIEWS:
      raise ValueError(
        f"NoisyMix `views` must be one of {list(NOISYMIX_VIEWS)}; got {self.views!r}."
      )
    for field in ("jsd_weight", "mixup_alpha", "add", "mult"):
      if getattr(self, field) < 0:
        raise ValueError(f"NoisyMix `{field}` must be >= 0; got {getattr(self, field)}.")
    if not 0.0 <= self.sparsity < 1.0:
      raise ValueError(f"NoisyMix `sparsity` must be in [0, 1); got {self.sparsity}.")
    if not self.blocks:
      raise ValueError("NoisyMix `blocks` must name at least one hook index.")
    return self


def noisymix_inputs(key: jax.Array, images: jax.Array, spec: NoisyMix) -> jax.Array:
  """[3B, H, W, C]: the clean batch and its two augmented views, concatenated."""
  if spec.views == "identity":
    return jnp.concatenate([images] * 3)
  fn = (
    functools.partial(augment.augmix, severity=spec.severity)
    if spec.views == "augmix"
    else functools.partial(augment.diffaugment, policy=spec.policy)
  )
  b = images.shape[0]
  keys = jax.random.split(key, 2 * b)
  views = jax.vmap(fn)(keys, jnp.concatenate([images, images]))
  return jax.lax.stop_gradient(jnp.concatenate([images, views]))


def noisymix_hook(key: jax.Array, labels: jax.Array, spec: NoisyMix, num_classes: int):
  """(block_hook or None, targets) of the three-view batch; see `NoisyMix`."""
  kw = dict(add=spec.add, mult=spec.mult, sparsity=spec.sparsity)
  if spec.mixup_alpha > 0 and spec.noise:
    return augment.noisy_mixup_hook(
      key,
      labels,
      alpha=spec.mixup_alpha,
      blocks=spec.blocks,
      num_views=3,
      num_classes=num_classes,
      **kw,
    )
  if spec.mixup_alpha > 0:
    return augment.manifold_mixup_hook(
      key, labels, alpha=spec.mixup_alpha, blocks=spec.blocks, num_views=3, num_classes=num_classes
    )
  if spec.noise:
    return augment.noise_hook(key, blocks=spec.blocks, num_views=3, **kw), labels
  return None, labels


def noisymix_loss(logits3: jax.Array, targets: jax.Array, labels: jax.Array, jsd_weight: float):
  """(loss, cross-entropy, JSD, accuracy of the clean view) of [3B, K] logits."""
  lc, l1, l2 = jnp.split(logits3, 3)
  ce = losses.cross_entropy(lc, targets).mean()
  jsd = losses.jsd_consistency(lc, l1, l2).mean()
  return ce + jsd_weight * jsd, ce, jsd, losses.accuracy(lc, labels).mean()
