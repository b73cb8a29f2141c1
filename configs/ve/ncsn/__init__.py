"""NCSN (Song & Ermon, 2019) and the ablations of NCSNv2's techniques, as score_sde ships them.

score_sde's configs/ve/ncsn/ holds eight copies of one file that differ in the
dataset, the noise levels, the EMA and the Langevin settings; `ncsn_config`
writes that file once. The suffixes name the NCSNv2 paper's techniques (Song &
Ermon, 2020) that a config applies: 1, sigma_max as large as the largest
distance between training images (50 for CIFAR-10, 90 for CelebA, instead of
NCSN's 1); 2, many more noise levels (232, 500 instead of 10); 4, 5 Langevin
steps per level with a step size chosen for them (NCSN: 100 steps of 2e-5
sigma_i^2 / sigma_min^2, which is the ald corrector's snr = 0.316); 5, an EMA
of the parameters. The network stays NCSN's (technique 3 makes it NCSNv2).

Published values the score_sde files leave implicit come from their dataset
defaults (configs/datasets.py); every other key keeps its configs/default.py
value.

Parameter counts are those of ermongroup/ncsn's CondRefineNetDilated with as
many levels. score_sde's NCSN cannot be built as published; patched to run,
its third refine block is twice as wide (2 nf, as in its NCSNv2) and it has
34,428,675 / 44,828,931 / 57,384,195 parameters for 10 / 232 / 500 levels.
"""

import ml_collections

from configs import networks
from configs.ve.ncsnv2 import ncsnv2_config


def ncsn_config(dataset: str, *, n_levels: int, sigma_max: float | None, ema_rate: float,
                corrector_steps: int, snr: float) -> ml_collections.ConfigDict:
  """An NCSN config of score_sde's configs/ve/ncsn, from what its file sets.

  Args:
    dataset: 'cifar10' or 'celeb_a' (the tfds name), whose score_sde defaults apply.
    n_levels: noise levels, sde.N (num_scales in score_sde); the network's
      conditional norms get one row each.
    sigma_max: the largest sigma; None keeps the dataset default.
    ema_rate: EMA decay of the parameters; 0 evaluates the raw parameters.
    corrector_steps: annealed Langevin steps per noise level.
    snr: the Langevin corrector's signal-to-noise ratio, which sets its step size.

  Returns:
    The config, unlocked.
  """
  # NCSNv2's annealed-Langevin VE setup on discrete levels, with NCSN's network and optimiser.
  config = ncsnv2_config(dataset, networks.ncsn, n_levels=n_levels, corrector_steps=corrector_steps,
                         snr=snr)
  config.model.scale_by_sigma = False  # the network outputs the score; its norms see sigma
  config.model.ema_rate = ema_rate
  if sigma_max is not None:
    config.sde.sigma_max = sigma_max
  config.optim.optimizer = 'adam'
  config.optim.lr = 1e-3
  config.optim.beta1 = 0.9
  config.optim.eps = 1e-8
  config.optim.weight_decay = 0.0
  return config
