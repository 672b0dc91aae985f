"""The hybrid recipe (adaptive alpha = acc_adv / (acc_adv + acc_clean), eps grown
linearly from eps/10 to 8/255 over the first 30 epochs) with a WideResNet-34-10 on
CIFAR-10: PGD-10 at step 2/255, SGD lr 0.1 (momentum 0.9, weight decay 5e-4), batch
128, 100 epochs with the learning rate x0.1 at epochs 50 and 75, pad-4 crop + flip.

Prepare once (needs internet and TensorFlow, on any machine):
  tfds build cifar10 --file_format=array_record
then, on one host (every local device):
  python -m experiments.main --config=experiments/configs/cifar10_wrn34_10_hybrid.py \\
      --workdir=runs/cifar10_wrn34_10_hybrid --config.data_dir=$HOME/tensorflow_datasets \\
      --config.dtype=bfloat16
`--config=...:quick` shrinks it to a smoke run.
"""

from advjax.train import default_config
from experiments import configs


def get_config(arg=None):
  configs.check_arg(arg)
  c = configs.cifar10(default_config(), model="wrn34_10", num_epochs=100)
  c.name = "cifar10_wrn34_10_hybrid"
  c.recipe = "hybrid"
  c.alpha = 0.5
  c.eps_schedule = "linear"
  c.eps_warmup_epochs = 30
  if arg == "quick":
    configs.quick(c, num_examples=250)
  return c
