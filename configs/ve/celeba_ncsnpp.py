"""NCSN++ on CelebA 64 px with the VE SDE, trained on its 1000 discrete levels (SMLD).

62,693,251 parameters. Song et al.'s score_sde: configs/ve/celeba_ncsnpp.py

  python main.py --config configs/ve/celeba_ncsnpp.py \
      --workdir workdir/ve/celeba_ncsnpp --mode train
"""

import ml_collections

from configs import datasets, networks
from configs.default import get_default_config


def get_config() -> ml_collections.ConfigDict:
  config = get_default_config()
  datasets.celeba(config)
  networks.ncsnpp(config.model)
  config.model.embedding_type = 'positional'
  config.model.scale_by_sigma = True
  config.model.ema_rate = 0.999
  # The published file also sets model.sigma_begin = 90, a key nothing reads; the
  # sigma_max = 90 in effect comes from the CelebA defaults.

  config.sde.name = 'vesde'
  config.sampling.eps = 1e-5  # score_sde samples VE down to t = 1e-5 (VP, sub-VP: 1e-3)
  config.training.continuous = False
  config.sampling.predictor = 'reverse_diffusion'
  config.sampling.corrector = 'langevin'
  return config
