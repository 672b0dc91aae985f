"""The foundation's headline numbers on the embedded real MNIST.

A clean LeNet-5 (`mnist_standard`) must be broken by the PGD-20 evaluation: accuracy
at most 0.6 at eps 0.1 and at most 0.05 at eps 0.3 (the attack is real). The same two
commands are the README's "Measured" row for `mnist_standard`: its numbers must be what
they give here (each attack's key comes from its name, so the battery's numbers do not
depend on the eps grid or on the other attacks).
"""

import numpy as np
import pytest

from advjax import train
from tests._inputs import readme_table_row


@pytest.mark.slow
def test_mnist_standard_is_broken_by_pgd(tmp_path):
  from experiments.configs import mnist_standard  # pylint: disable=import-outside-toplevel

  c = mnist_standard.get_config()
  c.progress = False
  c.eval.eps_grid = (0.0, 0.1, 0.3)
  wd = str(tmp_path / "std")
  r01 = train.train_and_evaluate(c, wd)
  assert r01["clean_accuracy"] >= 0.965
  assert r01["attacks"]["pgd"]["accuracy"] <= 0.6
  assert r01["attacks"]["fgsm"]["accuracy"] >= r01["attacks"]["pgd"]["accuracy"]
  assert r01["masking_checks"]["passed"], r01["masking_checks"]
  c.eval.eps = 0.3  # PGD's step is a fraction of eps: 0.03 here
  c.eval.masking_checks = False  # run (and passed) in the first evaluation
  r03 = train.evaluate_checkpoint(c, wd)
  assert r03["attacks"]["pgd"]["accuracy"] <= 0.05
  assert r03["clean_accuracy"] == r01["clean_accuracy"]
  row = readme_table_row("### Measured", "`mnist_standard`")
  np.testing.assert_allclose(
    [float(v) for v in row[:4]],
    [
      r01["clean_accuracy"],
      r01["attacks"]["fgsm"]["accuracy"],
      r01["attacks"]["pgd"]["accuracy"],
      r03["attacks"]["pgd"]["accuracy"],
    ],
    atol=0.0015,
    err_msg="README's Measured row for mnist_standard no longer reproduces",
  )
