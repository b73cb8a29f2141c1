"""DDPM++ on CIFAR-10 with the VP SDE, trained on its 1000 discrete levels (DDPM loss).

61,804,419 parameters. Song et al.'s score_sde: configs/vp/cifar10_ddpmpp.py

  python main.py --config configs/vp/cifar10_ddpmpp.py \
      --workdir workdir/vp/cifar10_ddpmpp --mode train
"""

import ml_collections

from configs import networks
from configs.vp import vp_config


def get_config() -> ml_collections.ConfigDict:
  return vp_config('cifar10', networks.ddpmpp, continuous=False)
