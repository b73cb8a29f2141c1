"""DDPM++ (deep, continuous) on CIFAR-10 with the VP SDE.

106,632,579 parameters. Song et al.'s score_sde: configs/vp/cifar10_ddpmpp_deep_continuous.py

  python main.py --config configs/vp/cifar10_ddpmpp_deep_continuous.py \
      --workdir workdir/vp/cifar10_ddpmpp_deep_continuous --mode train
"""

import ml_collections

from configs import networks
from configs.vp import vp_config


def get_config() -> ml_collections.ConfigDict:
  config = vp_config('cifar10', networks.ddpmpp_deep, continuous=True)
  config.training.n_iters = 950_001
  return config
