"""The hybrid recipe with an EfficientNet-B0 on ImageNet, the hybrid preprint's setting:
L = alpha * CE(x) + (1 - alpha) * CE(PGD(x)), alpha = acc_adv / (acc_adv + acc_clean) on
the validation slice each epoch, eps grown linearly from eps/10 to eps over the first 15
epochs; SGD lr 0.01 (Nesterov momentum 0.9, cosine), batch 128, 50 epochs, random-resized
crop 224 + flip; weight decay 1e-5 (EfficientNet's usual; the preprint gives none). The preprint's eps (0.03, "on the normalized scale") is read here as
RobustBench's ImageNet budget, 4/255 on [0, 1] pixels; its ImageNet subset is whatever
folder you prepare (the same layout as ImageNet's).

Prepare once (a folder train/<wnid>/*.JPEG, val/<wnid>/*.JPEG):
  python -m experiments.prepare --source=folder:/data/imagenet_subset \\
      --output=data/imagenet_subset --num_shards=64
One host (every local device):
  python -m experiments.main --config=experiments/configs/imagenet_efficientnet_b0_hybrid.py \\
      --workdir=runs/imagenet_efficientnet_b0_hybrid --config.dtype=bfloat16
Several hosts, e.g. SLURM with 4 nodes x 8 GPUs (the README's multi-host section):
  srun --nodes=4 --ntasks-per-node=1 --gpus-per-node=8 python -m experiments.main \\
      --config=experiments/configs/imagenet_efficientnet_b0_hybrid.py \\
      --workdir=/shared/runs/imagenet_efficientnet_b0_hybrid --config.dtype=bfloat16
(a TPU pod slice: the one-host command on every worker, with --distributed=on).
`--config=...:quick` shrinks it to a smoke run.
"""

from advjax.train import default_config
from experiments import configs


def get_config(arg=None):
  configs.check_arg(arg)
  c = configs.imagenet(
    default_config(),
    model="efficientnet_b0",
    num_epochs=50,
    batch_size=128,
    learning_rate=0.01,
    weight_decay=1e-5,
    dataset="array_record:data/imagenet_subset",
  )
  c.name = "imagenet_efficientnet_b0_hybrid"
  c.recipe = "hybrid"
  c.alpha = 0.5
  c.eps_schedule = "linear"
  c.eps_warmup_epochs = 15
  c.validation_size = 1000
  if arg == "quick":
    configs.quick(c, num_examples=250)
  return c
