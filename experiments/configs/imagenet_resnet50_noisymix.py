"""NoisyMix (Erichson, Lim et al. 2022) on ImageNet with a ResNet-50, NoisyMix's setting:
the clean batch and two AugMix views (severity 3, JSD weight 12) through one forward pass,
mixup (Beta(1, 1)) at the input or after a random one of the first three stages (manifold
mixup) with sparse additive and multiplicative noise (0.5, 0.5, sparsity 0.65); SGD lr 0.1
with Nesterov momentum 0.9, weight decay 1e-4, cosine decay, random-resized crop 224 +
flip. Standard training otherwise (alpha = 1: no adversarial term); evaluated clean, under
attack at RobustBench's ImageNet eps 4/255 and on the 15 common corruptions.

200 epochs as NoisyMix's `imagenet.py`; one departure from it: batch 256 (its 166 does not
split over 8 or 16 devices).

Prepare once (an ImageNet folder train/<wnid>/*.JPEG, val/<wnid>/*.JPEG):
  python -m experiments.prepare --source=folder:/data/imagenet --output=data/imagenet \\
      --num_shards=1024
One host (every local device):
  python -m experiments.main --config=experiments/configs/imagenet_resnet50_noisymix.py \\
      --workdir=runs/imagenet_resnet50_noisymix --config.dtype=bfloat16
Several hosts, e.g. SLURM with 4 nodes x 8 GPUs (the README's multi-host section):
  srun --nodes=4 --ntasks-per-node=1 --gpus-per-node=8 python -m experiments.main \\
      --config=experiments/configs/imagenet_resnet50_noisymix.py \\
      --workdir=/shared/runs/imagenet_resnet50_noisymix --config.dtype=bfloat16
(a TPU pod slice: the one-host command on every worker, with --distributed=on).
`--config=...:quick` shrinks it to a smoke run.
"""

from advjax.train import default_config
from experiments import configs


def get_config(arg=None):
  configs.check_arg(arg)
  c = configs.imagenet(default_config(), model="resnet50", num_epochs=200)
  c.name = "imagenet_resnet50_noisymix"
  c.recipe = "standard"
  c.noisymix.views = "augmix"
  c.noisymix.jsd_weight = 12.0
  c.noisymix.mixup_alpha = 1.0
  c.noisymix.blocks = (0, 2, 3, 4)  # the input, after stages 1-3 (ResNet50's block_hook)
  c.noisymix.noise = True
  c.noisymix.add, c.noisymix.mult, c.noisymix.sparsity = 0.5, 0.5, 0.65
  c.noisymix.severity = 3.0
  c.eval.corruptions = ("common",)
  c.eval.corruption_examples = 1000
  if arg == "quick":
    configs.quick(c, num_examples=250)
  return c
