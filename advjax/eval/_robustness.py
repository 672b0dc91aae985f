"""Clean and adversarial accuracy, confidence and a gallery, over a whole dataset."""
import time
from typing import Callable, Dict, Optional

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from advjax.data import iterate_eval

# attack(key, logits_fn, images, labels) -> adversarial images
EvalAttack = Callable[[jax.Array, Callable, jax.Array, jax.Array], jax.Array]


def evaluate_robustness(apply_fn: Callable, variables, dataset, attacks: Dict[str, EvalAttack],
                        *, key: jax.Array, batch_size: int = 500,
                        gallery_size: int = 8, progress: bool = True) -> Dict:
  """Accuracy and mean confidence on clean and adversarial versions of `dataset`.

  Args:
    apply_fn: `(variables, images) -> logits` in inference mode.
    variables: the model variables (passed as a jit argument, not a constant).
    dataset: an `ArrayDataset`.
    attacks: name -> `attack(key, logits_fn, images, labels)`.
    key: PRNG key; batch i of attack a uses `fold_in(fold_in(key, a), i)`.
    batch_size: evaluation batch (the last one is padded and masked).
    gallery_size: how many examples of each attack to keep for a figure.
    progress: show a progress bar.

  Returns:
    {"num_examples", "clean": {"accuracy", "confidence"}, "attacks": {name:
    {"accuracy", "confidence", "time_s"}}, "gallery": {name: (clean, adv, labels,
    pred_clean, pred_adv)}}; accuracies and confidences (mean max-softmax) in [0, 1].
  """
  def clean_fn(v, x):
    p = jax.nn.softmax(apply_fn(v, x))
    return jnp.argmax(p, -1), jnp.max(p, -1)
  clean_fn = jax.jit(clean_fn)

  def make_adv_fn(attack):
    def fn(v, k, x, y):
      logits_fn = lambda im: apply_fn(v, im)
      x_adv = attack(k, logits_fn, x, y)
      p = jax.nn.softmax(logits_fn(x_adv))
      return x_adv, jnp.argmax(p, -1), jnp.max(p, -1)
    return jax.jit(fn)

  n = len(dataset)
  sums = {"clean": np.zeros(2)}
  gallery = {}
  times = {}
  clean_preds = []
  for x, y, m in iterate_eval(dataset, batch_size):
    pred, conf = jax.device_get(clean_fn(variables, x))
    sums["clean"] += [np.sum((pred == y) & m), np.sum(conf * m)]
    clean_preds.append(pred[m])
  clean_preds = np.concatenate(clean_preds)
  nb = -(-n // batch_size)
  for a, (name, attack) in enumerate(attacks.items()):
    fn = make_adv_fn(attack)
    sums[name] = np.zeros(2)
    t0 = time.perf_counter()
    for i, (x, y, m) in enumerate(tqdm(iterate_eval(dataset, batch_size), total=nb,
                                       desc=f"eval {name}", disable=not progress,
                                       leave=False)):
      k = jax.random.fold_in(jax.random.fold_in(key, a), i)
      x_adv, pred, conf = jax.device_get(fn(variables, k, x, y))
      sums[name] += [np.sum((pred == y) & m), np.sum(conf * m)]
      if i == 0:
        g = min(gallery_size, int(m.sum()))
        gallery[name] = (x[:g], x_adv[:g], y[:g], clean_preds[:g], pred[:g])
    times[name] = time.perf_counter() - t0
  out = {"num_examples": n,
         "clean": {"accuracy": sums["clean"][0] / n, "confidence": sums["clean"][1] / n},
         "attacks": {}, "gallery": gallery}
  for name in attacks:
    out["attacks"][name] = {"accuracy": sums[name][0] / n, "confidence": sums[name][1] / n,
                            "time_s": times[name]}
  return out


def logits_fn_apply(logits_fn: Callable) -> Callable:
  """Adapts a plain `logits_fn(images)` to the `(variables, images)` form (variables unused)."""
  return lambda v, x: logits_fn(x)
