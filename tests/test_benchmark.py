"""RobustBench's protocol (advjax.eval's threat models, entry, benchmark points) and
`python -m experiments.benchmark`, against robustbench 1.1.1's own definitions."""

import ast
import importlib.util
import json
import os

import jax.numpy as jnp
import numpy as np
import pytest

from advjax import eval as ev
from advjax import models
from experiments import benchmark
from tests._inputs import run_experiment

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _robustbench_file(*parts):
  spec = importlib.util.find_spec("robustbench")
  assert spec is not None, "the test command installs robustbench (--no-deps)"
  return os.path.join(spec.submodule_search_locations[0], *parts)


def test_threat_models_keep_eps_exact_and_print_it_as_robustbench_does():
  assert ev.threat_model("cifar10", "Linf").eps_string == "8/255"
  assert ev.threat_model("cifar100", "linf").eps == ev.THREAT_MODELS[("cifar100", "Linf")]
  assert float(ev.threat_model("cifar10", "L2").eps) == 0.5
  assert ev.threat_model("cifar10", "L2").eps_string == "0.5"
  assert ev.threat_model("imagenet", "Linf").eps_string == "4/255"
  assert ev.threat_model("mnist", "Linf").eps_string == "0.3"
  assert ev.threat_model("imagenet", "Linf").attack_norm == "linf"
  with pytest.raises(ValueError, match="imagenet/Linf"):
    ev.threat_model("imagenet", "L2")


def test_model_info_has_exactly_robustbenchs_fields_and_formats():
  # robustbench.utils.ModelInfo's fields, read from its source (importing it needs its
  # evaluation dependencies)
  with open(_robustbench_file("utils.py"), encoding="utf-8") as f:
    tree = ast.parse(f.read())
  cls = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == "ModelInfo")
  fields = [n.target.id for n in cls.body if isinstance(n, ast.AnnAssign)]
  assert list(ev.MODEL_INFO_FIELDS) == fields
  info = ev.model_info(
    ev.threat_model("cifar10", "Linf"),
    clean_accuracy=0.87123,
    autoattack_accuracy=0.4405,
    architecture="WideResNet-34-10",
  )
  entry = json.loads(ev.model_info_json(info))
  assert list(entry) == fields
  # update_json's formatting: percentages rounded to two decimals, as strings
  assert entry["clean_acc"] == str(round(0.87123 * 100, 2)) == "87.12"
  assert entry["autoattack_acc"] == "44.05"
  assert entry["eps"] == "8/255" and entry["dataset"] == "cifar10"
  assert entry["number_forward_passes"] == 1 and entry["additional_data"] is False
  with pytest.raises(ValueError, match="schema"):
    ev.model_info_json(dict(info, clean_accuracy=1.0))


def test_imagenet_points_are_robustbenchs_list_in_its_order():
  ids = ev.imagenet_test_ids()
  with open(
    _robustbench_file("helper_files", "imagenet_test_image_ids.txt"), encoding="utf-8"
  ) as f:
    assert ids == [line.strip() for line in f if line.strip()]
  assert len(ids) == 5000 and len(set(ids)) == 5000
  assert ids[0] == "n09468604/ILSVRC2012_val_00015253.JPEG"


def test_imagenet_points_read_the_list_from_a_validation_folder(tmp_path):
  from PIL import Image  # pylint: disable=import-outside-toplevel
  from skimage import data as skdata  # pylint: disable=import-outside-toplevel
  from advjax import data  # pylint: disable=import-outside-toplevel

  ids = ev.imagenet_test_ids()[:3]
  photos = [skdata.astronaut(), skdata.chelsea(), skdata.coffee()]  # real, 3 sizes
  for rel, photo in zip(ids, photos):
    (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(photo).save(tmp_path / rel, format="JPEG", quality=95)
  (tmp_path / "n00000000").mkdir()  # another class folder shifts the indices by one
  x, y = ev.load_imagenet_points(str(tmp_path), 3)
  assert x.shape == (3, 224, 224, 3) and x.dtype == np.float32
  wnids = sorted(["n00000000"] + [r.split("/")[0] for r in ids])
  assert list(y) == [wnids.index(r.split("/")[0]) for r in ids]
  for i, rel in enumerate(ids):
    with open(tmp_path / rel, "rb") as f:
      want = data.resize_center_crop(data.decode_image(f.read(), 3, rel))
    np.testing.assert_array_equal(x[i], want / np.float32(255))
  with pytest.raises(ValueError, match="missing"):
    ev.load_imagenet_points(str(tmp_path), 4)


def test_first_points_checks_n_examples():
  x, y = np.zeros((20, 4, 4, 3), np.float32), np.arange(20)
  xs, ys = ev.first_points(x, y, 5, "cifar10")
  assert xs.shape[0] == 5 and list(ys) == [0, 1, 2, 3, 4]
  with pytest.raises(ValueError, match="only 20"):
    ev.first_points(x, y, 21, "cifar10")
  with pytest.raises(ValueError, match="at most 5000"):
    ev.first_points(np.zeros((6000, 1, 1, 3)), np.zeros(6000), 5001, "imagenet")
  with pytest.raises(ValueError, match="positive"):
    ev.first_points(x, y, 0, "cifar10")


@pytest.mark.slow
def test_benchmark_writes_the_entry_and_does_not_depend_on_batch_size(quick_runs, mnist, tmp_path):
  kw = dict(
    run=quick_runs["std"],
    dataset="mnist",
    n_examples=40,
    num_steps=3,
    num_queries=20,
    progress=False,
  )
  details = benchmark.benchmark(str(tmp_path / "b16"), batch_size=16, **kw)
  entry = json.loads((tmp_path / "b16" / "model_info.json").read_text())
  assert list(entry) == list(ev.MODEL_INFO_FIELDS)
  assert entry["eps"] == "0.3" and entry["dataset"] == "mnist"
  assert "Custom AutoAttack budget" in entry["footnote"]
  # clean accuracy on the first 40 test points, computed here independently
  from advjax import train  # pylint: disable=import-outside-toplevel

  run, state = train.load_run(quick_runs["std"])
  x, y = mnist["test"].images[:40], mnist["test"].labels[:40]
  logits = models.make_logits_fn(run.model, state.variables())(jnp.asarray(x))
  clean = float(np.mean(np.argmax(np.asarray(logits), -1) == y))
  assert details["clean_accuracy"] == pytest.approx(clean)
  assert entry["clean_acc"] == str(round(100 * clean, 2))
  assert 0.0 <= details["robust_accuracy"] <= clean
  stages = list(details["robust_accuracy_by_stage"].values())
  assert all(a >= b for a, b in zip([clean] + stages, stages))  # never increases
  assert stages[-1] == details["robust_accuracy"]
  points = np.load(tmp_path / "b16" / "points.npz")
  assert np.array_equal(points["label"], y) and np.array_equal(points["id"], np.arange(40))
  assert np.mean(points["broken_by"] >= 0) == pytest.approx(clean)
  robust = points["broken_by"] == len(details["autoattack"]["stages"])
  assert np.array_equal(points["margin"] < 0, ~robust)
  assert np.all(points["linf"] <= 0.3 + 1e-6)
  lines = (tmp_path / "b16" / "points.jsonl").read_text().splitlines()
  assert [json.loads(s)["broken_by"] for s in lines] == points["broken_by"].tolist()
  # the state of a finished run is kept: the same command again needs --resume, and
  # resuming replays every saved batch to the same records
  with pytest.raises(Exception, match="--resume"):
    benchmark.benchmark(str(tmp_path / "b16"), batch_size=16, **kw)
  again = benchmark.benchmark(str(tmp_path / "b16"), batch_size=16, resume=True, **kw)
  assert again["robust_accuracy"] == details["robust_accuracy"]
  assert np.array_equal(np.load(tmp_path / "b16" / "points.npz")["margin"], points["margin"])
  # the same points in one batch: the same verdict per point (per-example randomness)
  benchmark.benchmark(str(tmp_path / "b40"), batch_size=40, **kw)
  assert np.array_equal(np.load(tmp_path / "b40" / "points.npz")["broken_by"], points["broken_by"])
  assert json.loads((tmp_path / "b40" / "model_info.json").read_text()) == entry


def _cli_usage_error(tmp_path, *args) -> str:
  """Runs `experiments.benchmark` with `args`; asserts exit 2 and no workdir; returns stderr."""
  proc = run_experiment("benchmark", f"--workdir={tmp_path}/w", *args, timeout=300)
  assert proc.returncode == 2, proc.stderr
  assert not os.path.exists(tmp_path / "w")
  return proc.stderr


def test_benchmark_cli_rejects_two_model_sources(tmp_path):
  err = _cli_usage_error(
    tmp_path, "--run=a", "--checkpoint=b.pt", "--arch=resnet18", "--n_examples=4"
  )
  assert "exactly one of --run" in err


def test_threat_model_takes_a_custom_eps():
  custom = ev.threat_model("mnist", "Linf", "0.1")
  assert custom.eps == ev.THREAT_MODELS[("mnist", "Linf")] / 3 and custom.eps_string == "0.1"
  assert not custom.standard and ev.threat_model("mnist", "Linf").standard
  assert ev.threat_model("cifar10", "Linf", "8/255").standard  # the same as none
  assert ev.threat_model("cifar10", "linf", "2/255").eps_string == "2/255"
  assert ev.threat_model("cifar10", "Linf", 0.03).eps_string == "0.03"
  assert ev.threat_model("mnist", "L2", "1.5").eps_string == "1.5"  # no protocol one
  for bad in ("abc", "-0.1", "0", "1/0"):
    with pytest.raises(ValueError, match="eps"):
      ev.threat_model("mnist", "Linf", bad)
  with pytest.raises(ValueError, match="dataset"):
    ev.threat_model("svhn", "Linf", "0.1")


def _linear_model(num_classes=3, size=4, seed=0):
  w = np.random.default_rng(seed).normal(size=(size * size, num_classes)).astype(np.float32)
  return lambda x: jnp.reshape(x, (x.shape[0], -1)) @ jnp.asarray(w)


@pytest.mark.slow
def test_autoattack_seconds_add_up_the_invocations_of_a_resumed_evaluation(tmp_path):
  import jax  # pylint: disable=import-outside-toplevel

  rng = np.random.default_rng(1)
  images = rng.uniform(size=(24, 4, 4, 1)).astype(np.float32)
  logits_fn = _linear_model()
  labels = np.asarray(jnp.argmax(logits_fn(jnp.asarray(images)), -1))
  state = tmp_path / "state"
  kw = dict(version="custom", attacks=("apgd_ce",), batch_size=8, num_steps=3, state_dir=str(state))
  threat = ev.threat_model("mnist", "Linf", "0.05")
  run = lambda: ev.run_autoattack(jax.random.PRNGKey(0), logits_fn, images, labels, threat, **kw)
  first = run()
  seconds = lambda paths: sum(float(np.load(p)["seconds"]) for p in paths)
  files = sorted(state.glob("*.npz"))
  assert [p.name[:2] for p in files] == ["00"] * 3 + ["01"] * 3  # clean pass, APGD-CE
  assert first["seconds"] == pytest.approx(seconds(files))
  # killed during APGD-CE's last batch: that batch is lost, the others are kept
  files[-1].unlink()
  kept = seconds(files[:-1])
  second = run()
  assert second["robust_accuracy"] == first["robust_accuracy"]
  # the first invocation's finished batches count with the time they took
  assert second["seconds"] == pytest.approx(kept + seconds(files[-1:]))
  assert second["seconds"] > second["seconds_this_invocation"] + 0.5 * kept


@pytest.mark.slow
def test_benchmark_at_a_custom_eps_says_it_is_not_the_leaderboards(quick_runs, tmp_path):
  details = benchmark.benchmark(
    str(tmp_path / "b"),
    run=quick_runs["std"],
    dataset="mnist",
    eps="0.1",
    n_examples=8,
    batch_size=8,
    num_steps=2,
    num_queries=5,
    progress=False,
  )
  entry = json.loads((tmp_path / "b" / "model_info.json").read_text())
  assert entry["eps"] == "0.1" and details["eps_float"] == pytest.approx(0.1)
  assert details["standard_threat_model"] is False
  assert (
    "Custom threat model Linf eps 0.1, not the leaderboard's (mnist Linf 0.3)." in entry["footnote"]
  )
  points = np.load(tmp_path / "b" / "points.npz")
  assert np.all(points["linf"] <= 0.1 + 1e-6)


def test_benchmark_cli_rejects_a_bad_eps(tmp_path):
  err = _cli_usage_error(tmp_path, "--run=a", "--dataset=mnist", "--eps=big", "--n_examples=4")
  assert "--eps=big" in err and "8/255" in err
