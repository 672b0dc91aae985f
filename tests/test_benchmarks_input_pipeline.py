"""benchmarks.input_pipeline: the Grain pipeline's images/s per worker against a bare
PIL/NumPy loop, and the peak RSS of an epoch's process tree against the folder's size."""

import re
import sys

import pytest

from tests._inputs import benchmark_module


@pytest.fixture(scope="module")
def bench():
  return benchmark_module("input_pipeline")


def _table(text, header_start):
  """The rows (lists of floats) of the markdown table whose header starts so."""
  lines = text.splitlines()
  start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
  header = [c.strip() for c in lines[start].strip("|").split("|")]
  rows = []
  for line in lines[start + 2 :]:
    if not line.startswith("|"):
      break
    rows.append([float(c) for c in line.strip("|").split("|")])
  assert rows and all(len(r) == len(header) for r in rows)
  return header, rows


def test_tree_sampler_counts_a_grandchilds_memory(bench):
  # a child that starts a grandchild holding 200 MiB of written bytes
  grandchild = "import time; b = b'1' * (200 * 2**20); time.sleep(1.0)"
  child = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {grandchild!r}])"
  out, peak, hwm, procs = bench.sample_tree_memory([sys.executable, "-c", child], period=0.02)
  assert out == ""
  assert procs >= 2
  assert 200 * 2**20 <= peak <= hwm < 400 * 2**20


def test_tiny_run_prints_both_tables_with_sane_numbers(bench, capsys):
  bench.main(["--tiny"])
  text = capsys.readouterr().out
  bare = float(re.search(r"bare single-process PIL/NumPy loop: ([\d.]+) images/s", text).group(1))
  assert bare > 0

  header, rows = _table(text, "| workers |")
  assert header == [
    "workers",
    "images/s",
    "images/s per worker",
    "x bare per worker (target >= 0.9)",
    "speed-up over 1 worker",
  ]
  assert [r[0] for r in rows] == [0, 1]
  for workers, rate, per, frac, speedup in rows:
    assert rate > 0 and per == pytest.approx(rate / max(1, workers), rel=1e-2, abs=0.1)
    assert frac == pytest.approx(per / bare, rel=0.02, abs=0.01)
    assert speedup > 0
  assert rows[1][4] == 1.0  # one worker over itself
  assert rows[0][4] == pytest.approx(rows[0][1] / rows[1][1], rel=0.02, abs=0.01)

  header, rows = _table(text, "| images in folder |")
  assert header == [
    "images in folder",
    "images read",
    "epoch s",
    "processes",
    "peak tree RSS (MiB)",
    "sum of VmHWM (MiB)",
  ]
  assert [r[0] for r in rows] == [50, 100]
  assert [r[1] for r in rows] == [48, 96]  # whole batches of 8, one epoch
  for _, _, seconds, procs, peak, hwm in rows:
    assert seconds > 0 and procs >= 1
    # a Python process with JAX and Grain imported holds far more than 50 MiB
    assert 50 < peak <= hwm + 0.1
  ratio = float(re.search(r"peak RSS ratio 100 / 50 images: ([\d.]+)", text).group(1))
  assert ratio == pytest.approx(rows[1][4] / rows[0][4], abs=2e-3)
  assert re.search(r"target flat within 10%: (met|not met)", text)
