"""PGD adversarial training (Madry et al. 2018; alpha = 0) of a PreActResNet-18 on
CIFAR-10 in the setting of Rice et al. 2020 (RobustBench's common baseline): PGD-10,
eps 8/255, step 2/255, SGD lr 0.1 (momentum 0.9, weight decay 5e-4), batch 128, 200
epochs with the learning rate x0.1 at epochs 100 and 150, pad-4 crop + flip.

Prepare once (needs internet and TensorFlow, on any machine):
  tfds build cifar10 --file_format=array_record
then, on one host (every local device):
  python -m experiments.main --config=experiments/configs/cifar10_preactresnet18_pgd_at.py \\
      --workdir=runs/cifar10_preactresnet18_pgd_at --config.data_dir=$HOME/tensorflow_datasets
`--config=...:quick` shrinks it to a smoke run; `--config.dtype=bfloat16` computes in
bf16 on an accelerator.
"""

from advjax.train import default_config
from experiments import configs


def get_config(arg=None):
  configs.check_arg(arg)
  c = configs.cifar10(default_config(), model="preact_resnet18", num_epochs=200)
  c.name = "cifar10_preactresnet18_pgd_at"
  c.recipe = "adversarial"
  c.alpha = 0.0
  if arg == "quick":
    configs.quick(c, num_examples=250)
  return c
