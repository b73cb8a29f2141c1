"""NCSN++ (continuous) on CIFAR-10 with the sub-VP SDE.

62,693,251 parameters. Song et al.'s score_sde: configs/subvp/cifar10_ncsnpp_continuous.py

  python main.py --config configs/subvp/cifar10_ncsnpp_continuous.py \
      --workdir workdir/subvp/cifar10_ncsnpp_continuous --mode train
"""

import ml_collections

from configs import datasets, networks
from configs.default import get_default_config


def get_config() -> ml_collections.ConfigDict:
  config = get_default_config()
  datasets.cifar10(config)
  networks.ncsnpp(config.model)
  config.model.embedding_type = 'positional'
  config.model.scale_by_sigma = False
  config.model.ema_rate = 0.9999
  config.data.centered = True

  config.sde.name = 'subvpsde'
  config.sampling.eps = 1e-3  # score_sde samples VP and sub-VP down to t = 1e-3
  config.training.continuous = True
  config.training.reduce_mean = True
  config.sampling.predictor = 'euler_maruyama'
  config.sampling.corrector = 'none'
  return config
