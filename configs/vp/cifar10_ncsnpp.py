"""NCSN++ on CIFAR-10 with the VP SDE, trained on its 1000 discrete levels (DDPM loss).

62,693,251 parameters. Song et al.'s score_sde: configs/vp/cifar10_ncsnpp.py

  python main.py --config configs/vp/cifar10_ncsnpp.py \
      --workdir workdir/vp/cifar10_ncsnpp --mode train
"""

import ml_collections

from configs import networks
from configs.vp import vp_config


def get_config() -> ml_collections.ConfigDict:
  config = vp_config('cifar10', networks.ncsnpp, continuous=False)
  config.sampling.predictor = 'reverse_diffusion'  # as published (DDPM++: ancestral sampling)
  return config
