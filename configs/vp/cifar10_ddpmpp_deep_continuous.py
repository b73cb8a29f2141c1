"""DDPM++ (deep, continuous) on CIFAR-10 with the VP SDE.

106,632,579 parameters. Song et al.'s score_sde: configs/vp/cifar10_ddpmpp_deep_continuous.py

  python main.py --config configs/vp/cifar10_ddpmpp_deep_continuous.py \
      --workdir workdir/vp/cifar10_ddpmpp_deep_continuous --mode train
"""

import ml_collections

from configs import datasets, networks
from configs.default import get_default_config


def get_config() -> ml_collections.ConfigDict:
  config = get_default_config()
  datasets.cifar10(config)
  networks.ddpmpp_deep(config.model)
  config.model.embedding_type = 'positional'
  config.model.scale_by_sigma = False
  config.model.ema_rate = 0.9999
  config.data.centered = True

  config.sde.name = 'vpsde'
  config.sampling.eps = 1e-3  # score_sde samples VP and sub-VP down to t = 1e-3
  config.training.continuous = True
  config.training.reduce_mean = True
  config.training.n_iters = 950_001
  config.sampling.predictor = 'euler_maruyama'
  config.sampling.corrector = 'none'
  return config
