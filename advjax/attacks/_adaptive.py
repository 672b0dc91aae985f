"""Adaptive-attack wrappers (Athalye, Carlini, Wagner 2018): EOT and BPDA on a `logits_fn`.

Both turn a model that defeats gradient-based attacks into an ordinary
`logits_fn(images) -> logits` whose gradients are useful, so every attack of
this package (`pgd`, `apgd`, `autoattack`, ...) runs on it unchanged:

- `eot_logits_fn`: a randomized model `f(key, images)` averaged over a fixed set
  of draws (Expectation Over Transformation).
- `bpda` / `bpda_logits_fn`: a non-differentiable preprocessing step whose
  backward pass is that of a differentiable approximation (Backward Pass
  Differentiable Approximation).

Both are pure and compose (BPDA inside EOT for a randomized, non-differentiable
defence). Reference: A. Athalye, N. Carlini, D. Wagner, "Obfuscated Gradients
Give a False Sense of Security", ICML 2018, https://arxiv.org/abs/1802.00420
(sections 4.1 and 4.2).
"""

import math
from typing import Callable, Optional

import jax
import jax.numpy as jnp

from advjax import _validate
from advjax import types

RandomizedLogitsFn = Callable[[jax.Array, jax.Array], jax.Array]
EOT_AVERAGES = ("probs", "logits")


def eot_logits_fn(
  key: jax.Array,
  randomized_logits_fn: RandomizedLogitsFn,
  *,
  num_draws: int = 20,
  average: str = "probs",
  draws_per_batch: Optional[int] = None,
) -> types.LogitsFn:
  """A randomized model as a deterministic `logits_fn`: its mean over `num_draws` draws.

  EOT (Athalye et al. 2018, sec. 4.2) attacks a randomized classifier through
  the expectation of its output over the randomness t,
  `E_t f(t(x))`, whose gradient is `E_t grad f(t(x))`. With `average="probs"`
  (default), f is the softmax output and the wrapper returns

    `g(x) = log(1/N * sum_i softmax(h(k_i, x)))`,

  so `softmax(g(x))` is the randomized model's expected prediction (the same
  reduction as `eval.ensemble_logits_fn`: an EOT model is an ensemble over
  draws), `argmax g(x)` is its vote by mean probability, and cross-entropy on
  `g` is the loss of the expected prediction, `-log E_t p_y(t(x))`. Its input
  gradient is `E_t[w_t * grad CE_t]` with `w_t = p_y(t(x)) / E_t p_y(t(x))`: the
  per-draw loss gradients averaged with weights that favour the draws that still
  predict y. It is not exactly the expected-loss gradient `E_t grad CE_t` that
  AutoAttack's "rand" version averages over 20 draws (no wrapper at the logits
  can give that, since the attack computes its loss on what the wrapper
  returns). `average="logits"` returns the mean logits `1/N * sum_i h(k_i, x)`;
  any loss L on them has the gradient `E_t[J_t]^T grad L(mean logits)`, the
  expected Jacobian (exactly the expected-loss gradient for losses linear in
  the logits).

  The draws: draw i uses the key `jax.random.fold_in(key, i)`, i = 0 .. N-1,
  the same N keys at every call. So the returned function is deterministic (the
  same images give the same logits, as the attacks' best-iterate bookkeeping
  needs), and adding draws keeps the first ones. It also means an attack
  optimizes against these N realizations only, a sample of the randomness, and
  may overfit them: measure the result under fresh draws (another key), as
  the randomized model is deployed. How one key turns into randomness per
  example is `randomized_logits_fn`'s business; fold the example index into it
  there (`fold_in(key, example_id)`) to make a draw independent of the batch.

  Args:
    key: a JAX PRNG key from which the N draw keys are derived.
    randomized_logits_fn: `f(key, images [B, H, W, C] in [0, 1]) -> logits [B, K]`,
      a pure function whose randomness comes only from `key` (e.g. a model with
      input noise, random resizing or dropout kept on at test time).
    num_draws: N >= 1, the number of draws averaged at every call.
    average: "probs" (log of the mean softmax, default) or "logits" (mean logits).
    draws_per_batch: draws evaluated at once (`jax.lax.map` with this
      `batch_size`); None evaluates all N in one `jax.vmap`. Lower it when N
      copies of the batch's activations do not fit in memory; the values are
      the same.

  Returns:
    `g(images [B, H, W, C]) -> [B, K]`: with "probs", normalized log mean
    probabilities (`logsumexp(g(x), -1) == 0`); with "logits", mean logits. `g`
    is pure: it can be jitted, vmapped and differentiated.

  Raises:
    ValueError: if `key` is not one PRNG key, `randomized_logits_fn` is not
      callable, `num_draws` or
      `draws_per_batch` is not an integer >= 1, or `average` is unknown; when
      called, if `randomized_logits_fn` does not return logits [B, K].

  Example:
    >>> noisy = lambda k, x: x.reshape(len(x), -1)[:, :3] + jax.random.normal(k, (len(x), 3))
    >>> f = eot_logits_fn(jax.random.PRNGKey(0), noisy, num_draws=8, average="logits")
    >>> f(jnp.zeros((2, 1, 1, 3))).shape
    (2, 3)
  """
  if not (
    hasattr(key, "dtype")
    and (
      jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
      or (key.dtype == jnp.uint32 and jnp.shape(key) == (2,))
    )
  ):
    raise ValueError(
      f"`key` must be one JAX PRNG key (`jax.random.key(seed)` or "
      f"`jax.random.PRNGKey(seed)`); got {type(key).__name__} "
      f"{getattr(key, 'dtype', '')}{list(jnp.shape(key))}."
    )
  if not callable(randomized_logits_fn):
    raise ValueError(
      f"`randomized_logits_fn` must be a callable `f(key, images) -> "
      f"logits`; got {type(randomized_logits_fn).__name__}."
    )
  _validate.check_positive_int(num_draws, "num_draws")
  _validate.check_choice(average, "average", EOT_AVERAGES)
  if draws_per_batch is not None:
    _validate.check_positive_int(draws_per_batch, "draws_per_batch")
  log_n = math.log(num_draws)  # a Python float: no tracer when built under jit

  def logits_fn(images: jax.Array) -> jax.Array:
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(num_draws))

    def one_draw(k):
      out = randomized_logits_fn(k, images)
      if out.ndim != 2 or out.shape[0] != images.shape[0]:  # static: holds under jit
        raise ValueError(
          f"`randomized_logits_fn` must map (key, images [B, ...]) to logits "
          f"[B, classes]; got shape {out.shape} for a batch of "
          f"{images.shape[0]}."
        )
      return jax.nn.log_softmax(out, axis=-1) if average == "probs" else out

    if draws_per_batch is None or draws_per_batch >= num_draws:
      per_draw = jax.vmap(one_draw)(keys)
    else:
      per_draw = jax.lax.map(one_draw, keys, batch_size=draws_per_batch)
    if average == "logits":
      return jnp.mean(per_draw, axis=0)
    return jax.nn.logsumexp(per_draw, axis=0) - jnp.asarray(log_n, per_draw.dtype)

  return logits_fn


def _identity(x):
  return x


def bpda(
  preprocess: Callable[[jax.Array], jax.Array],
  *,
  approx: Optional[Callable[[jax.Array], jax.Array]] = None,
) -> Callable[[jax.Array], jax.Array]:
  """`preprocess` in the forward pass, the gradient of `approx` in the backward pass.

  BPDA (Athalye et al. 2018, sec. 4.1): a defence that preprocesses its input
  with a non-differentiable (or gradient-masking) map g -- quantization, JPEG,
  thermometer encoding, a projection onto a generative model -- is attacked by
  computing the forward pass with g itself and the backward pass with a
  differentiable approximation with `approx(x) ~ g(x)`; for a g that roughly
  preserves its input (`g(x) ~ x`) the identity is the usual choice. The
  function's value is exactly `preprocess(x)` and its vector-Jacobian product is
  that of `approx` at the same x (a straight-through estimator,
  `g(x) + (g~(x) - stop_gradient(g~(x)))`, so it also works inside `jax.lax`
  loops and `vmap`s whose traced values -- a random key -- `preprocess` closes
  over). `approx` is evaluated in the forward pass too (free for the identity).

  Args:
    preprocess: `x -> g(x)`, any JAX-traceable function (its own gradient is
      never used; it may be zero or undefined).
    approx: a differentiable `x -> g~(x)` with the same output shape and dtype
      as `preprocess`; default the identity (then `preprocess` must keep the
      input's shape and dtype).

  Returns:
    `f(x) -> preprocess(x)` with `jax.vjp(f, x)[1](c) == jax.vjp(approx, x)[1](c)`.
    Pure: it can be jitted, vmapped and differentiated (to any order, through
    `approx`).

  Raises:
    ValueError: if `preprocess` or `approx` is not callable; when called, if
      their outputs differ in shape or dtype (a static check: it holds under jit).

  Example:
    >>> f = bpda(jnp.round)
    >>> float(f(jnp.float32(0.7))), float(jax.grad(f)(jnp.float32(0.7)))
    (1.0, 1.0)
  """
  if not callable(preprocess):
    raise ValueError(
      f"`preprocess` must be a callable `x -> g(x)`; got {type(preprocess).__name__}."
    )
  if approx is not None and not callable(approx):
    raise ValueError(
      f"`approx` must be None (the identity) or a callable `x -> g~(x)`; "
      f"got {type(approx).__name__}."
    )
  backward = _identity if approx is None else approx

  # Straight-through form rather than `jax.custom_vjp`: a custom_vjp function cannot close
  # over values traced by an enclosing transformation (the draw key of a randomized
  # `preprocess` inside `eot_logits_fn`'s `lax.map` raises UnexpectedTracerError), while this
  # is plain autodiff and works under every transformation. The value is exact: for finite
  # `a`, `a - stop_gradient(a)` is exactly 0, so `out` is `preprocess(x)` bit for bit (a -0.0
  # becomes +0.0); the gradient is exactly that of `approx`.
  def wrapped(x):
    out = jax.lax.stop_gradient(preprocess(x))
    a = backward(x)
    if (jnp.shape(out), jnp.result_type(out)) != (jnp.shape(a), jnp.result_type(a)):
      name = "approx" if approx is not None else "approx (the identity)"
      raise ValueError(
        f"`preprocess` and `{name}` must return the same shape and dtype; "
        f"got {jnp.shape(out)} {jnp.result_type(out)} and {jnp.shape(a)} "
        f"{jnp.result_type(a)}."
      )
    return out + (a - jax.lax.stop_gradient(a))

  return wrapped


def bpda_logits_fn(
  logits_fn: types.LogitsFn,
  preprocess: Callable[[jax.Array], jax.Array],
  *,
  approx: Optional[Callable[[jax.Array], jax.Array]] = None,
) -> types.LogitsFn:
  """A preprocessing defence `logits_fn(preprocess(x))` with BPDA gradients.

  `images -> logits_fn(bpda(preprocess, approx=approx)(images))`: the
  defended model's exact predictions, and the input gradient of the model at
  the preprocessed point pulled back through `approx` (Athalye et al. 2018,
  sec. 4.1). Pass the result to any attack.

  Args:
    logits_fn: the classifier behind the preprocessing,
      `images [B, H, W, C] in [0, 1] -> logits [B, K]`.
    preprocess: the defence's input transformation `images -> images`, e.g.
      `functools.partial(attacks.quantize, levels=8)` (bit-depth reduction).
    approx: its differentiable approximation; default the identity.

  Returns:
    `f(images [B, H, W, C]) -> logits [B, K]`, pure.

  Raises:
    ValueError: if an argument is not callable (see `bpda`).

  Example:
    >>> w = jnp.arange(6.0).reshape(3, 2)
    >>> f = bpda_logits_fn(lambda x: x.reshape(len(x), -1) @ w, jnp.round)
    >>> jax.grad(lambda x: f(x)[0, 1])(jnp.full((1, 1, 1, 3), 0.4)).ravel().tolist()
    [1.0, 3.0, 5.0]
  """
  if not callable(logits_fn):
    raise ValueError(
      f"`logits_fn` must be a callable `images -> logits`; got {type(logits_fn).__name__}."
    )
  through = bpda(preprocess, approx=approx)
  return lambda images: logits_fn(through(images))
