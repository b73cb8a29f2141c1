"""NCSN++ (continuous) on LSUN church_outdoor 256 px with the VE SDE.

65,574,549 parameters. Song et al.'s score_sde: configs/ve/church_ncsnpp_continuous.py

  python main.py --config configs/ve/church_ncsnpp_continuous.py \
      --workdir workdir/ve/church_ncsnpp_continuous --mode train
"""

import ml_collections

from configs import datasets, networks
from configs.default import get_default_config


def get_config() -> ml_collections.ConfigDict:
  config = get_default_config()
  datasets.lsun(config, 'lsun/church_outdoor')
  networks.ncsnpp_256(config.model)
  config.model.embedding_type = 'fourier'
  config.model.scale_by_sigma = True
  config.model.ema_rate = 0.999
  config.sde.sigma_max = 380.0

  config.sde.name = 'vesde'
  config.sampling.eps = 1e-5  # score_sde samples VE down to t = 1e-5 (VP, sub-VP: 1e-3)
  config.training.continuous = True
  config.sampling.predictor = 'reverse_diffusion'
  config.sampling.corrector = 'langevin'
  return config
