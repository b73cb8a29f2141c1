"""DDPM (Ho et al., 2020) on LSUN church_outdoor 256 px as the VP SDE's 1000 discrete levels.

111,569,923 parameters. Song et al.'s score_sde: configs/vp/ddpm/church.py

score_sde's DDPM attends once per up-path level; Ho et al.'s network attends after
every up-path block at 16 px (2 more attention blocks, 113,673,219 parameters).

  python main.py --config configs/vp/ddpm/church.py \
      --workdir workdir/vp/ddpm/church --mode train
"""

import ml_collections

from configs import datasets, networks
from configs.default import get_default_config


def get_config() -> ml_collections.ConfigDict:
  config = get_default_config()
  datasets.lsun(config, 'lsun/church_outdoor')
  networks.ddpm_256(config.model)
  config.model.scale_by_sigma = False
  config.model.ema_rate = 0.9999
  config.data.centered = True
  config.sde.N = 1000

  config.sde.name = 'vpsde'
  config.sampling.eps = 1e-3  # score_sde samples VP and sub-VP down to t = 1e-3
  config.training.continuous = False
  config.training.reduce_mean = True
  config.sampling.predictor = 'ancestral_sampling'
  config.sampling.corrector = 'none'

  config.optim.lr = 2e-5
  return config
