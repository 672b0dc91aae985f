"""Small typed parts that attacks are composed of.

Objectives are per-example (`[B, K], [B] -> [B]`) and say whether the attacker
maximizes them; projections map an iterate back into the threat model;
initializations draw a random start inside the ball; `quantize` puts images on
the k/255 grid. Composition follows deepmind-research/adversarial_robustness.
"""

import functools
import inspect
from typing import Callable, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp

from advjax import _validate
from advjax import losses
from advjax.losses import cw_margin
from advjax.losses import dlr

NORMS = ("linf", "l2")
_TINY = 1e-12


# --------------------------------------------------------------------------- #
# Objectives
# --------------------------------------------------------------------------- #
class Objective(NamedTuple):
  """A per-example attack objective.

  Attributes:
    fn: `(logits [B, K], labels [B], targets [B] or None) -> [B]`.
    maximize: True if the attacker ascends `fn`, False if it descends it.
    name: the name it is registered under.
  """

  fn: Callable[..., jax.Array]
  maximize: bool
  name: str

  def ascent_value(self, logits, labels, targets=None):
    """The value the attacker ascends: `fn` or `-fn`, per example [B]."""
    v = self.fn(logits, labels, targets)
    return v if self.maximize else -v


def _cross_entropy(logits, labels, targets=None):
  """`losses.cross_entropy` as an `Objective.fn` (targets unused)."""
  del targets
  return losses.cross_entropy(logits, labels)


def targeted_dlr(logits, labels, targets):
  """Targeted DLR of Croce & Hein 2020 (maximized); see `dlr`."""
  return dlr(logits, labels, targets)


LOSSES = ("ce", "margin", "dlr")


def get_objective(name: str, *, targeted: bool = False, confidence: float = 0.0) -> Objective:
  """Looks up an attack objective by name.

  Args:
    name: "ce" (cross-entropy), "margin" (CW margin with `confidence`) or "dlr".
    targeted: if True, the objective drives the prediction towards `targets`.
    confidence: kappa of the CW margin.

  Returns:
    An `Objective`.

  Raises:
    ValueError: for an unknown name.
  """
  _validate.check_choice(name, "loss", LOSSES)
  if name == "ce":
    if targeted:  # descend the cross-entropy to the target class
      return Objective(lambda lg, y, t: _cross_entropy(lg, t), False, "ce")
    return Objective(_cross_entropy, True, "ce")
  if name == "margin":
    fn = functools.partial(cw_margin, confidence=confidence)
    if targeted:
      return Objective(lambda lg, y, t: fn(lg, y, t), True, "margin")
    return Objective(lambda lg, y, t: fn(lg, y), True, "margin")
  if targeted:
    return Objective(dlr, True, "dlr")
  return Objective(lambda lg, y, t: dlr(lg, y), True, "dlr")


def is_successful(logits, labels, targets=None):
  """Per-example attack success: misclassified, or classified as the target."""
  pred = jnp.argmax(logits, axis=-1)
  if targets is not None:
    return pred == targets
  return pred != labels


# --------------------------------------------------------------------------- #
# Geometry: norms, projections, steps, random starts, quantization
# --------------------------------------------------------------------------- #
def norm_tag(norm: str) -> str:
  """The norm in an attack's report label: "" for Linf (the default), " L2" for L2."""
  return "" if norm == "linf" else f" {norm.upper()}"


def _bcast(v, x):
  """Broadcasts a scalar or per-example [B] value against x [B, ...]."""
  v = jnp.asarray(v, x.dtype)
  return v.reshape(v.shape + (1,) * (x.ndim - v.ndim)) if v.ndim else v


def norm_per_example(x, norm: str):
  """Per-example norm of x [B, ...] -> [B] ("linf" or "l2")."""
  flat = x.reshape(x.shape[0], -1)
  if norm == "linf":
    return jnp.max(jnp.abs(flat), axis=-1)
  return jnp.sqrt(jnp.sum(flat * flat, axis=-1))


def clip_box(x, bounds: Tuple[float, float] = (0.0, 1.0)):
  """Projection onto the image box."""
  return jnp.clip(x, bounds[0], bounds[1])


def project_linf(x, origin, eps):
  """Projects x onto the Linf ball of radius eps around origin (eps scalar or [B])."""
  e = _bcast(eps, x)
  return origin + jnp.clip(x - origin, -e, e)


def project_l2(x, origin, eps):
  """Projects x onto the L2 ball of radius eps around origin (eps scalar or [B])."""
  delta = x - origin
  n = _bcast(norm_per_example(delta, "l2"), x)
  factor = jnp.minimum(1.0, _bcast(eps, x) / jnp.maximum(n, _TINY))
  return origin + delta * factor


def project(x, origin, eps, norm: str, bounds=(0.0, 1.0)):
  """Projects onto the intersection of the eps-ball and the box (ball, then box).

  For Linf the result lies in both sets exactly; for L2 clipping to the box after
  the ball projection can only shrink the perturbation, so both hold as well.
  """
  ball = project_linf if norm == "linf" else project_l2
  return clip_box(ball(x, origin, eps), bounds)


def steepest_step(grad, norm: str):
  """The steepest-ascent direction of unit norm: sign(g) for Linf, g/||g||_2 for L2.

  A zero gradient gives a zero step (never NaN).
  """
  if norm == "linf":
    return jnp.sign(grad)
  return normalize_per_example(grad, "l2")


def normalize_per_example(x, norm: str):
  """x / ||x||_norm per example (unit norm; 0 where x is all zero, never NaN)."""
  n = _bcast(norm_per_example(x, norm), x)
  return jnp.where(n > 0, x / jnp.maximum(n, _TINY), 0.0)


def per_example_keys(key, example_ids=None, batch_size: Optional[int] = None) -> jax.Array:
  """One PRNG key per example: `jax.random.fold_in(key, example_ids[b])`, [B].

  Every random draw of an attack comes from its example's key (then folded with
  restart, iteration or stage indices), so an example's result does not depend on
  the batch it is in, its position there, or how the batch is sharded.

  Args:
    key: a JAX PRNG key (typed `jax.random.key` or raw `jax.random.PRNGKey`).
    example_ids: int [B], each example's identity (e.g. its dataset index);
      default `jnp.arange(batch_size)`, the position in the batch.
    batch_size: B, required when `example_ids` is None, checked against it
      otherwise.

  Returns:
    Keys [B] (typed) or [B, 2] (raw), one per example.

  Raises:
    ValueError: if `example_ids` is not an int vector of length `batch_size`.
  """
  example_ids = check_example_ids(example_ids, batch_size)
  return jax.vmap(lambda i: jax.random.fold_in(key, i))(example_ids)


def check_example_ids(example_ids, batch_size: Optional[int]) -> jax.Array:
  """`example_ids` as an int array [B] (`arange(batch_size)` for None); a static check.

  Raises:
    ValueError: if `example_ids` is not an int vector of length `batch_size`.
  """
  if example_ids is None:
    if batch_size is None:
      raise ValueError("`batch_size` is required when `example_ids` is None.")
    return jnp.arange(batch_size, dtype=jnp.int32)
  example_ids = jnp.asarray(example_ids)
  if (
    example_ids.ndim != 1
    or not jnp.issubdtype(example_ids.dtype, jnp.integer)
    or (batch_size is not None and example_ids.shape[0] != batch_size)
  ):
    raise ValueError(
      f"`example_ids` must be an int array [B] with B = {batch_size} (the "
      f"batch size); got {example_ids.dtype} {example_ids.shape}."
    )
  return example_ids


def fold_in_each(keys, data) -> jax.Array:
  """`jax.random.fold_in(k, data)` for each per-example key of `keys` [B]."""
  return jax.vmap(lambda k: jax.random.fold_in(k, data))(keys)


def split_each(keys, num: int = 2) -> Tuple[jax.Array, ...]:
  """Splits each per-example key of `keys` [B] into `num`: a tuple of `num` [B] keys."""
  ks = jax.vmap(lambda k: jax.random.split(k, num))(keys)
  return tuple(ks[:, i] for i in range(num))


def draw_each(keys, sampler: Callable[[jax.Array], jax.Array]) -> jax.Array:
  """`sampler(key)` per example: [B, ...], row b drawn from `keys[b]` alone.

  E.g. `draw_each(keys, lambda k: jax.random.uniform(k, x.shape[1:]))`.
  """
  return jax.vmap(sampler)(keys)


def _init_linf_each(keys, x, eps):
  e = _bcast(eps, x)
  return x + draw_each(keys, lambda k: jax.random.uniform(k, x.shape[1:], x.dtype, -1.0, 1.0)) * e


def _init_l2_each(keys, x, eps):
  k_dir, k_rad = split_each(keys)
  d = x[0].size
  direction = draw_each(k_dir, lambda k: jax.random.normal(k, x.shape[1:], x.dtype))
  direction = direction / _bcast(jnp.maximum(norm_per_example(direction, "l2"), _TINY), x)
  radius = draw_each(k_rad, lambda k: jax.random.uniform(k, (), x.dtype)) ** (1.0 / d)
  return x + direction * _bcast(radius, x) * _bcast(eps, x)


def random_init_each(keys, x, eps, norm: str):
  """`random_init` from per-example keys [B] (see `per_example_keys`)."""
  return (_init_linf_each if norm == "linf" else _init_l2_each)(keys, x, eps)


def init_linf_uniform(key, x, eps, *, example_ids=None):
  """A random start uniform in the Linf ball: `random_init(key, x, eps, "linf", ...)`."""
  return random_init(key, x, eps, "linf", example_ids=example_ids)


def init_l2_uniform(key, x, eps, *, example_ids=None):
  """A random start uniform in the L2 ball (direction ~ normalized Gaussian, radius ~
  eps * U^(1/d), d the dimension): `random_init(key, x, eps, "l2", ...)`."""
  return random_init(key, x, eps, "l2", example_ids=example_ids)


def random_init(key, x, eps, norm: str, *, example_ids=None):
  """Uniform random start in the `norm` ball: Linf uniform per coordinate; L2 with
  direction ~ normalized Gaussian and radius ~ eps * U^(1/d), d the dimension.

  Args:
    key: a JAX PRNG key; example b draws from `fold_in(key, example_ids[b])`.
    x: images [B, ...].
    eps: radius, a scalar or per-example [B].
    norm: "linf" or "l2".
    example_ids: int [B], the examples' identities (default: position in the batch).

  Returns:
    [B, ...] random points in the ball (not clipped to the box).
  """
  return random_init_each(per_example_keys(key, example_ids, x.shape[0]), x, eps, norm)


def quantize(x, levels: int = 255):
  """Rounds images to the grid k / levels (k integer), as 8-bit images are stored."""
  return jnp.round(x * levels) / levels


# --------------------------------------------------------------------------- #
# Shared argument checks of the attacks
# --------------------------------------------------------------------------- #
def check_attack_args(
  logits_fn,
  images,
  labels,
  *,
  eps=None,
  norm: Optional[str] = None,
  num_steps=None,
  targets=None,
  loss: Optional[str] = None,
) -> int:
  """Validates the common attack arguments; returns the number of classes.

  Raises:
    ValueError: naming the argument that is wrong.
  """
  num_classes = _validate.check_classifier(logits_fn, images, labels, targets=targets)
  if norm is not None:
    _validate.check_choice(norm, "norm", NORMS)
  if loss is not None:
    _validate.check_choice(loss, "loss", LOSSES)
  if eps is not None:
    _validate.check_nonnegative(eps, "eps")
  if num_steps is not None:
    _validate.check_positive_int(num_steps, "num_steps")
  return num_classes


# --------------------------------------------------------------------------- #
# The input gradient every gradient attack shares
# --------------------------------------------------------------------------- #
class AttackInfo(NamedTuple):
  """Per-example diagnostics an attack can return beside its images.

  Attributes:
    success: [B] bool, re-predicted on the returned images (misclassified, or
      classified as the target when targeted).
    objective: [B] the attacker's ascent value at the returned images.
    zero_grad: [B] bool, True where the input gradient was exactly zero at the
      start: a warning that the model may mask gradients, not a robust answer.
  """

  success: jax.Array
  objective: jax.Array
  zero_grad: jax.Array


class AttackResult(NamedTuple):
  """What an attack's `*_with_info` variant returns.

  Attributes:
    images: [B, H, W, C] the adversarial images, as the plain attack returns them.
    info: the `AttackInfo` of those images.
  """

  images: jax.Array
  info: AttackInfo


def attack_result(images, x, info: AttackInfo) -> AttackResult:
  """`AttackResult` of `x` cast to the dtype of the clean `images`, under stop_gradient."""
  return jax.tree_util.tree_map(jax.lax.stop_gradient, AttackResult(x.astype(images.dtype), info))


def images_only(attack_with_info: Callable[..., AttackResult]) -> Callable[..., jax.Array]:
  """The attack `X` that returns only the images of `X_with_info` (same arguments).

  Under `jax.jit` the unused diagnostics are dead code that XLA removes.
  """
  name = attack_with_info.__name__.removesuffix("_with_info")

  @functools.wraps(attack_with_info)
  def attack(*args, **kwargs):
    return attack_with_info(*args, **kwargs).images

  attack.__name__ = attack.__qualname__ = name
  attack.__signature__ = inspect.signature(attack_with_info).replace(return_annotation=jax.Array)
  head, _, tail = (attack_with_info.__doc__ or "").partition("\n  Returns:\n")
  _, _, raises = tail.partition("\n\n  Raises:")
  attack.__doc__ = (
    f"{head}\n  Returns:\n    Adversarial images [B, H, W, C] of the input "
    f"dtype inside the eps-ball and the\n    bounds, under `stop_gradient`: "
    f"`{attack_with_info.__name__}(...).images`.\n"
  )
  if raises:
    attack.__doc__ += "\n  Raises:" + raises
  return attack


class MinNormResult(NamedTuple):
  """The result of a minimum-norm attack (CW, line searches).

  Attributes:
    images: [B, H, W, C] the smallest adversarial found per example; the
      original image where none was found.
    norms: [B] the perturbation norm `||images - original||` in the attack's
      norm; `inf` where no adversarial was found, so that medians and
      thresholds never count a failure as a tiny perturbation.
    success: [B] bool, re-predicted on `images` (misclassified, or classified
      as the target when targeted).
    zero_grad: [B] bool, True where the input gradient at the original image
      was exactly zero (a warning that the model may mask gradients).
  """

  images: jax.Array
  norms: jax.Array
  success: jax.Array
  zero_grad: jax.Array


def value_and_input_grad(logits_fn, objective: Objective, x, labels, targets=None):
  """Ascent value [B], logits [B, K] and input gradient [B, ...] at x.

  The per-example values are summed before differentiation, which gives each
  example its own gradient as long as `logits_fn` treats examples independently
  (true for any model in inference mode).
  """

  def total(x):
    logits = logits_fn(x)
    v = objective.ascent_value(logits, labels, targets)
    return jnp.sum(v), (v, logits)

  (_, (v, logits)), g = jax.value_and_grad(total, has_aux=True)(x)
  return v, logits, g


def is_zero(g):
  """Per-example: every entry of the gradient is exactly zero."""
  return jnp.all(g.reshape(g.shape[0], -1) == 0, axis=-1)
