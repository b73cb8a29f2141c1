"""NCSNv2 (Song & Ermon, 2020) as score_sde's configs/ve/ncsnv2 ship it.

score_sde's three NCSNv2 files repeat one block: the VE SDE on its N discrete
levels, sampled by annealed Langevin dynamics alone (the ald corrector, no
predictor) down to t = 1e-5; an EMA of the parameters; Adam at lr 1e-4 with no
warm-up and no gradient clipping. `ncsnv2_config` writes it once; each
experiment file names its dataset and network, the noise levels and Langevin
settings, and sets what else differs.
"""

from collections.abc import Callable

import ml_collections

from configs import datasets
from configs.default import get_default_config


def ncsnv2_config(dataset: str, network: Callable[[ml_collections.ConfigDict], None], *,
                  n_levels: int, corrector_steps: int, snr: float) -> ml_collections.ConfigDict:
  """An NCSNv2 config of score_sde's configs/ve/ncsnv2.

  Args:
    dataset: the tfds name, whose score_sde defaults apply (see
      `datasets.apply_defaults`).
    network: `networks.ncsnv2` (up to 64 px) or `networks.ncsnv2_128`.
    n_levels: noise levels, sde.N (num_scales in score_sde).
    corrector_steps: annealed Langevin steps per noise level.
    snr: the Langevin corrector's signal-to-noise ratio, which sets its step size.

  Returns:
    The config, unlocked.
  """
  config = get_default_config()
  datasets.apply_defaults(config, dataset)
  network(config.model)
  config.model.scale_by_sigma = True
  config.model.ema_rate = 0.999

  config.sde.name = 'vesde'
  config.sde.N = n_levels
  config.sampling.eps = 1e-5  # score_sde samples VE down to t = 1e-5 (VP, sub-VP: 1e-3)
  config.training.continuous = False
  config.sampling.predictor = 'none'
  config.sampling.corrector = 'ald'
  config.sampling.corrector_steps = corrector_steps
  config.sampling.snr = snr

  config.optim.lr = 1e-4
  config.optim.warmup = 0
  config.optim.grad_clip = -1.0  # no clipping
  return config
