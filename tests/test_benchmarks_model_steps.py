"""benchmarks.model_steps: the clean train step of each scale model per compute dtype."""

import pytest

from tests._inputs import benchmark_module


def _bench():
  return benchmark_module("model_steps")


def test_tiny_table_times_both_dtypes_and_counts_flops(capsys):
  bench = _bench()
  rows = bench.main(["--tiny"])
  out = capsys.readouterr().out
  assert bench.HEADER in out and out.count("| WRN-10-1 |") == 2
  assert [r["dtype"] for r in rows] == ["float32", "bfloat16"]
  for r in rows:
    # WRN-10-1 (RobustBench's layout, 10 classes): 77,850 parameters
    assert abs(r["params_m"] - 0.07785) < 1e-5, r
    assert r["batch"] == 4 and r["sec"] > 0 and r["img_s"] == pytest.approx(4 / r["sec"])
    assert r["gflop"] > 0 and r["peak_fraction"] is None  # no known peak for a CPU
  # the same program in both dtypes: XLA counts about the same FLOPs
  assert rows[1]["gflop"] == pytest.approx(rows[0]["gflop"], rel=0.2)


def test_bad_arguments_name_the_flag():
  bench = _bench()
  with pytest.raises(SystemExit):
    bench.parse_args(["--dtypes", "float16"])
  with pytest.raises(SystemExit):
    bench.parse_args(["--models", "ResNet-51"])
  assert list(bench.parse_args(["--models", "ResNet-50"]).table) == ["ResNet-50"]
