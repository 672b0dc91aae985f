"""AutoAttack's versions against the reference code (`pyautoattack`'s `_set_version`),
and `eval.run_autoattack`: compaction of the still-robust points between stages (the
same verdicts and images as the whole-batch `attacks.autoattack`), per-point records,
and an interrupted evaluation that resumes to the same result."""

import fractions
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advjax import attacks
from advjax import eval as ev
from tests._inputs import mlp_logits, trained_mlp

EPS = 0.05
BUDGET = dict(num_steps=2, num_queries=100)
THREAT = ev.ThreatModel("mnist", "Linf", fractions.Fraction(1, 20))


@pytest.fixture(scope="module")
def mlp(mnist):
  """A 784-32-10 MLP trained on the embedded MNIST and 64 test points (`trained_mlp`)."""
  return trained_mlp(mnist)


def test_versions_are_the_reference_codes():
  torch = pytest.importorskip("torch")
  pyautoattack = pytest.importorskip("pyautoattack")
  for version in ("standard", "plus", "rand"):
    ref = pyautoattack.AutoAttack(
      torch.nn.Linear(4, 10), norm="Linf", eps=0.3, version=version, device="cpu"
    )
    restarts = {
      "apgd-ce": ref.apgd.n_restarts,
      "apgd-dlr": ref.apgd.n_restarts,
      "apgd-t": ref.apgd_targeted.n_restarts,
      "fab": ref.fab.n_restarts,
      "fab-t": 1,  # run_standard_evaluation sets fab.n_restarts = 1 for FAB-T
      "square": ref.square.n_restarts,
    }
    want = tuple((a.replace("-", "_"), restarts[a]) for a in ref.attacks_to_run)
    assert attacks.autoattack_stages(version) == attacks.AUTOATTACK_VERSIONS[version] == want
    if "apgd-t" in ref.attacks_to_run:
      assert ref.apgd_targeted.n_target_classes == ref.fab.n_target_classes == 9
      assert ref.square.n_queries == 5000
    assert ref.apgd.n_iter == 100
  assert ref.apgd.eot_iter == attacks.AUTOATTACK_EOT_DRAWS == 20  # "rand"


def test_versions_fix_their_stages_and_custom_takes_pairs():
  with pytest.raises(ValueError, match="version='custom'"):
    attacks.autoattack_stages("plus", attacks=("apgd_ce",))
  with pytest.raises(ValueError, match="version"):
    attacks.autoattack_stages("strong")
  assert attacks.autoattack_stages() == attacks.AUTOATTACK_VERSIONS["standard"]
  assert attacks.autoattack_stages(
    "custom", attacks=("apgd_ce", ("fab", 3), "square"), num_restarts=2
  ) == (("apgd_ce", 2), ("fab", 3), ("square", 1))


@pytest.fixture(scope="module")
def whole_batch(mlp):
  p, x, y = mlp
  f = lambda z: mlp_logits(p, z)  # noqa: E731
  res = jax.jit(
    lambda k, x, y: attacks.autoattack(k, f, x, y, eps=EPS, version="standard", **BUDGET)
  )(jax.random.key(7), x, y)
  return f, res


@pytest.fixture(scope="module")
def compacted(mlp, whole_batch):
  _, x, y = mlp
  f, _ = whole_batch
  counts = []
  res = ev.run_autoattack(
    jax.random.key(7),
    f,
    np.asarray(x),
    np.asarray(y),
    THREAT,
    version="standard",
    batch_size=16,
    progress=counts.append,
    **BUDGET,
  )
  return dict(res, counts=counts)


@pytest.mark.slow
def test_compacted_driver_equals_the_whole_batch_autoattack(mlp, whole_batch, compacted):
  _, x, y = mlp
  _, whole = whole_batch
  r = compacted
  np.testing.assert_array_equal(r["broken_by"], np.asarray(whole.broken_by))
  # FAB-T's iterates differ in the last bits with the batch size (see
  # tests/test_attacks_invariance.py); APGD's and Square's agree bit for bit.
  np.testing.assert_allclose(r["images"], np.asarray(whole.images), rtol=0, atol=1e-6)
  # each pass attacks only the points still robust: 64 clean predictions, the points
  # APGD-CE, each of APGD-T's 9 targets, each of FAB-T's 9 targets and Square start from
  # (without compaction: 21 passes of 64)
  n_acc = {k: round(float(v) * len(y)) for k, v in whole.robust_accuracy.items()}
  fixed = len(y) + n_acc["clean"] + n_acc["fab_t"]
  low = fixed + 9 * n_acc["apgd_t"] + 9 * n_acc["fab_t"]
  high = fixed + 9 * n_acc["apgd_ce"] + 9 * n_acc["apgd_t"]
  assert low <= sum(r["counts"]) <= high, (low, sum(r["counts"]), high)
  counts = np.bincount(r["broken_by"] + 1, minlength=6)
  assert counts[1] > 0 and counts[0] > 0 and counts[5] > 0, counts  # broken, wrong, robust
  for stage, acc in r["robust_accuracy_by_stage"].items():
    assert acc == pytest.approx(float(whole.robust_accuracy[stage]))
  rec = r["records"]
  robust = rec["broken_by"] == len(r["stages"])
  assert np.array_equal(rec["margin"] < 0, ~robust)  # margin decides the verdict
  assert np.all(rec["linf"] <= EPS + 1e-6) and np.all(rec["l2"] >= rec["linf"])
  d = (r["images"] - np.asarray(x)).reshape(len(x), -1)
  np.testing.assert_allclose(rec["linf"], np.abs(d).max(1), rtol=1e-6, atol=1e-7)
  np.testing.assert_array_equal(rec["linf"][(rec["broken_by"] < 0) | robust], 0.0)  # kept
  logits = np.asarray(mlp_logits(mlp[0], jnp.asarray(r["images"])))
  yy = np.asarray(y)
  other = np.where(np.eye(10, dtype=bool)[yy], -np.inf, logits).max(1)
  np.testing.assert_allclose(
    rec["margin"], logits[np.arange(len(yy)), yy] - other, rtol=1e-5, atol=1e-5
  )


def test_padding_buckets_are_powers_of_two():
  from advjax.eval import _robustbench  # the driver's own helper

  sizes = {len(_robustbench._pad_to_bucket(np.arange(m), 16)) for m in range(1, 17)}
  assert sizes == {1, 2, 4, 8, 16}


class _Interrupt(Exception):
  pass


@pytest.mark.slow
def test_interrupted_evaluation_resumes_to_the_same_records(mlp, whole_batch, compacted, tmp_path):
  _, x, y = mlp
  f, _ = whole_batch
  calls = []

  def stop_after_6(count):
    calls.append(count)
    if len(calls) == 6:  # 4 clean batches, then the second batch of APGD-CE
      raise _Interrupt

  kw = dict(version="standard", batch_size=16, state_dir=str(tmp_path / "state"), **BUDGET)
  args = (jax.random.key(7), f, np.asarray(x), np.asarray(y), THREAT)
  with pytest.raises(_Interrupt):
    ev.run_autoattack(*args, progress=stop_after_6, **kw)
  saved = sorted(p.name for p in (tmp_path / "state").glob("*.npz"))
  assert saved == [
    "00_000000.npz",
    "00_000001.npz",
    "00_000002.npz",
    "00_000003.npz",
    "01_000000.npz",
    "01_000001.npz",
  ]
  resumed = ev.run_autoattack(*args, **kw)
  for k in ("broken_by", "images"):
    np.testing.assert_array_equal(resumed[k], compacted[k])
  for k, v in compacted["records"].items():
    np.testing.assert_array_equal(resumed["records"][k], v)
  with pytest.raises(ValueError, match="other settings"):
    ev.run_autoattack(*args, **dict(kw, num_steps=3))
  ev.write_points(str(tmp_path / "w"), resumed["records"], resumed["stages"])
  lines = [json.loads(s) for s in (tmp_path / "w" / "points.jsonl").read_text().splitlines()]
  assert len(lines) == len(y)
  for line, b in zip(lines, resumed["broken_by"]):
    want = "clean" if b < 0 else (resumed["stages"][b] if b < 4 else None)
    assert line["broken_by"] == b and line["broken_by_stage"] == want
  npz = np.load(tmp_path / "w" / "points.npz")
  np.testing.assert_array_equal(npz["margin"], resumed["records"]["margin"])


@pytest.mark.slow
def test_rand_version_attacks_the_eot_model(mlp):
  p, x, y = mlp
  noisy = lambda k, z: mlp_logits(p, z + 0.05 * jax.random.normal(k, z.shape))  # noqa: E731
  key = jax.random.key(3)
  res = attacks.autoattack(key, noisy, x[:16], y[:16], eps=EPS, version="rand", num_steps=5)
  assert set(res.robust_accuracy) == {"clean", "apgd_ce", "apgd_dlr"}
  eot = attacks.eot_logits_fn(jax.random.fold_in(key, 0x7F4A7C15), noisy, num_draws=20)
  assert attacks.autoattack_model(key, noisy, version="rand")(x[:2]).shape == (2, 10)
  np.testing.assert_array_equal(
    np.asarray(res.success), np.asarray(jnp.argmax(eot(res.images), -1) != y[:16])
  )
  assert float(res.robust_accuracy["apgd_dlr"]) < float(res.robust_accuracy["clean"])
  assert float(jnp.max(jnp.abs(res.images - x[:16]))) <= EPS + 1e-6


@pytest.mark.slow
def test_benchmark_against_the_original_runs_tiny():
  pytest.importorskip("torch")
  pytest.importorskip("pyautoattack")
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  out = subprocess.run(
    [sys.executable, "-m", "benchmarks.autoattack_vs_original", "--tiny"],
    cwd=root,
    capture_output=True,
    text=True,
    timeout=600,
    check=False,
  )
  assert out.returncode == 0, out.stderr[-2000:]
  row = [line for line in out.stdout.splitlines() if line.startswith("| lenet_clean")]
  assert len(row) == 1, out.stdout
  cells = [c.strip() for c in row[0].strip("|").split("|")]
  assert cells[1] == "16" and cells[6] == "yes", row  # points; mask == re-prediction
  ours, theirs = float(cells[3]), float(cells[4])
  assert 0.0 <= ours <= float(cells[2]) and 0.0 <= theirs <= float(cells[2])
  gap = float(out.stdout.rsplit("lenet_clean ", 1)[1].split()[0])
  assert gap < 1e-3  # the same weights on both sides
