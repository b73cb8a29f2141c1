"""NCSNv2 (Song & Ermon, 2020) on LSUN bedroom 128 px: 1086 noise levels from 190 down to 0.01.

83,445,379 parameters. Song et al.'s score_sde: configs/ve/ncsnv2/bedroom.py

  python main.py --config configs/ve/ncsnv2/bedroom.py \
      --workdir workdir/ve/ncsnv2/bedroom --mode train
"""

import ml_collections

from configs import datasets, networks
from configs.default import get_default_config


def get_config() -> ml_collections.ConfigDict:
  config = get_default_config()
  datasets.lsun(config, 'lsun/bedroom')
  networks.ncsnv2_128(config.model)
  config.model.scale_by_sigma = True
  config.model.ema_rate = 0.9999
  config.data.image_size = 128
  config.sde.sigma_max = 190.0
  config.sde.N = 1086

  config.sde.name = 'vesde'
  config.sampling.eps = 1e-5  # score_sde samples VE down to t = 1e-5 (VP, sub-VP: 1e-3)
  # The published file sets `training.continuouse = False` (sic), a key nothing
  # reads: training.continuous keeps the LSUN default, True, and so it is here.
  config.training.continuous = True
  config.training.batch_size = 128
  config.sampling.predictor = 'none'
  config.sampling.corrector = 'ald'
  config.sampling.n_steps_each = 3
  config.sampling.snr = 0.095

  config.optim.lr = 1e-4
  config.optim.warmup = 0
  config.optim.grad_clip = -1.0  # no clipping
  return config
