"""The hybrid recipe on CIFAR-10 with a ResNet-18 (TFDS data prepared on your machine).

Prepare once (needs internet and TensorFlow, on any machine):
  tfds build cifar10 --file_format=array_record
then
  python -m experiments.main --config=experiments/configs/cifar10_resnet18_hybrid.py \
      --workdir=runs/cifar10_hybrid --config.data_dir=$HOME/tensorflow_datasets
Hybrid preprint settings: lr 0.01 (SGD, momentum 0.9, cosine), batch 128, 50 epochs, eps
8/255 (~0.03) Linf, PGD-7 adversarial examples, eps from eps/10 to eps over 15 epochs;
pad-4 crop + flip.
"""

from advjax.train import default_config
from experiments import configs


def get_config(arg=None):
  configs.check_arg(arg)
  c = configs.cifar10(
    default_config(),
    model="resnet18",
    num_epochs=50,
    learning_rate=0.01,
    lr_schedule="cosine",
    num_steps=7,
  )
  c.name = "cifar10_resnet18_hybrid"
  c.recipe = "hybrid"
  c.eps_schedule = "linear"
  c.eps_warmup_epochs = 15
  if arg == "quick":
    configs.quick(c, num_examples=250)
  return c
