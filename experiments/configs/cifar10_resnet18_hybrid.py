"""The hybrid recipe on CIFAR-10 with a ResNet-18 (TFDS data prepared on your machine).

Prepare once (needs internet and TensorFlow, on any machine):
  tfds build cifar10 --file_format=array_record
then
  python -m experiments.main --config=experiments/configs/cifar10_resnet18_hybrid.py \
      --workdir=runs/cifar10_hybrid --config.data_dir=$HOME/tensorflow_datasets
Hybrid preprint settings: lr 0.01 (SGD, momentum 0.9), batch 128, 50 epochs, eps 8/255
(~0.03) Linf, PGD-7 adversarial examples, eps from eps/10 to eps.
"""
from advjax.train import default_config
from experiments import configs


def get_config(arg=None):
  configs.check_arg(arg)
  c = default_config()
  c.name = "cifar10_resnet18_hybrid"
  c.dataset = "tfds:cifar10"
  c.validation_size = 1000
  c.model = "resnet18"
  c.recipe = "hybrid"
  c.num_epochs = 50
  c.batch_size = 128
  c.optimizer = "sgd"
  c.learning_rate = 0.01
  c.momentum = 0.9
  c.lr_schedule = "cosine"
  c.weight_decay = 5e-4
  c.train_attack.name = "pgd"
  c.train_attack.eps = 8 / 255
  c.train_attack.num_steps = 7
  c.eps_schedule = "linear"
  c.eps_warmup_epochs = 15
  c.eval.eps = 8 / 255
  c.eval.eps_grid = (0.0, 2 / 255, 4 / 255, 8 / 255, 12 / 255, 16 / 255)
  c.eval.pgd_step_size = 2 / 255
  c.eval.batch_size = 250
  c.eval.corruption_tables = "cifar10"   # the CIFAR-10-C severity tables
  if arg == "quick":
    configs.quick(c, num_examples=250)
  return c
