"""benchmarks.accelerator in its tiny CPU form: every column of the GPU suite's tables,
with the references (torchattacks, the original AutoAttack) on the same weights."""

import pytest

from benchmarks import accelerator


@pytest.mark.slow
def test_tiny_suite_prints_every_column_with_both_sides(capsys):
  out = accelerator.main(["--tiny"])
  printed = capsys.readouterr().out
  assert accelerator.ATTACK_HEADER in printed and accelerator.TRAIN_HEADER in printed
  rows = out["attacks"]
  assert {(r["arch"], r["dtype"], r["attack"]) for r in rows} == {
    (a, d, k)
    for a in accelerator.TINY_ARCHS
    for d in ("float32", "bfloat16")
    for k in ("PGD-10", "AutoAttack-standard")
  }
  for r in rows:
    assert r["advjax_img_s"] > 0 and r["reference_img_s"] > 0, r
    assert 0.0 <= r["advjax_acc"] <= 1.0 and 0.0 <= r["reference_acc"] <= 1.0, r
    assert accelerator._format_attack_row(r) in printed
  train_rows = out["train"]
  assert {(r["arch"], r["dtype"], r["objective"]) for r in train_rows} == {
    (a, d, o)
    for a in accelerator.TINY_ARCHS
    for d in ("float32", "bfloat16")
    for o in ("pgd_at", "trades")
  }
  for r in train_rows:
    assert r["img_s"] > 0 and r["tflops"] > 0, r  # XLA's cost analysis counted FLOPs
    assert r["peak_fraction"] is None  # no data-sheet peak for a CPU
    assert accelerator._format_train_row(r) in printed
