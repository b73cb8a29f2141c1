"""NCSN++ (continuous) on CelebA-HQ 1024 px with the VE SDE.

105,785,896 parameters. Song et al.'s score_sde: configs/ve/celebahq_ncsnpp_continuous.py

celeb_a_hq needs a manual download: see tfds' celeb_a_hq page.

  python main.py --config configs/ve/celebahq_ncsnpp_continuous.py \
      --workdir workdir/ve/celebahq_ncsnpp_continuous --mode train
"""

import ml_collections

from configs import datasets, networks
from configs.default import get_default_config


def get_config() -> ml_collections.ConfigDict:
  config = get_default_config()
  datasets.faces_1024(config, 'celeb_a_hq/1024')
  networks.ncsnpp_1024(config.model)
  config.model.embedding_type = 'fourier'
  config.model.scale_by_sigma = True
  config.model.ema_rate = 0.9999

  config.sde.name = 'vesde'
  config.sampling.eps = 1e-5  # score_sde samples VE down to t = 1e-5 (VP, sub-VP: 1e-3)
  config.training.continuous = True
  # As published; the FFHQ 1024 file has reduce_mean = True.
  config.training.reduce_mean = False
  config.sampling.predictor = 'reverse_diffusion'
  config.sampling.corrector = 'langevin'
  return config
