"""NCSNv2 (Song & Ermon, 2020) on CelebA 64 px: 500 noise levels from 90 down to 0.01.

29,694,083 parameters. Song et al.'s score_sde: configs/ve/ncsnv2/celeba.py

The parameter count is NCSNv2's own (ermongroup/ncsnv2 and score_sde_pytorch);
score_sde's JAX copy widens its third RefineNet block (33,970,563).

  python main.py --config configs/ve/ncsnv2/celeba.py \
      --workdir workdir/ve/ncsnv2/celeba --mode train
"""

import ml_collections

from configs import datasets, networks
from configs.default import get_default_config


def get_config() -> ml_collections.ConfigDict:
  config = get_default_config()
  datasets.celeba(config)
  networks.ncsnv2(config.model)
  config.model.scale_by_sigma = True
  config.model.ema_rate = 0.999
  config.sde.N = 500

  config.sde.name = 'vesde'
  config.sampling.eps = 1e-5  # score_sde samples VE down to t = 1e-5 (VP, sub-VP: 1e-3)
  config.training.continuous = False
  config.sampling.predictor = 'none'
  config.sampling.corrector = 'ald'
  config.sampling.n_steps_each = 5
  config.sampling.snr = 0.128
  # The published file also defines local variables (step_size, ckpt_id,
  # noise_removal = False, ...) that it never stores in the config: noise_removal
  # stays True.

  config.optim.lr = 1e-4
  config.optim.warmup = 0
  config.optim.grad_clip = -1.0  # no clipping
  return config
