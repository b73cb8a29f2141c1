"""Song et al.'s VP SDE configs (score_sde's configs/vp): what they share, also with sub-VP.

score_sde's configs/vp/*.py, configs/vp/ddpm/*.py and configs/subvp/*.py files
repeat one block: data centred to [-1, 1], a network that outputs the noise
(no 1 / sigma output scaling) with positional embeddings of the time, an EMA
rate of 0.9999, the loss averaged over pixels, sampling down to t = 1e-3 by a
predictor alone. `vp_config` writes it once, for the VP SDE or, given
sde='subvpsde', the sub-VP SDE, whose files are copies of the continuous VP
ones; each experiment file names its dataset and network and sets what else
differs.
"""

from collections.abc import Callable

import ml_collections

from configs import datasets
from configs.default import get_default_config


def vp_config(dataset: str, network: Callable[[ml_collections.ConfigDict], None], *,
              continuous: bool, sde: str = 'vpsde') -> ml_collections.ConfigDict:
  """A config of score_sde's configs/vp (or configs/subvp).

  Args:
    dataset: the tfds name, whose score_sde defaults apply (see
      `datasets.apply_defaults`).
    network: a function of configs/networks.py that sets config.model's keys.
    continuous: train on continuous time and sample with the Euler-Maruyama
      predictor, or train with DDPM's loss on the SDE's N discrete levels and
      sample with DDPM's ancestral sampling.
    sde: 'vpsde' or 'subvpsde'.

  Returns:
    The config, unlocked.
  """
  config = get_default_config()
  datasets.apply_defaults(config, dataset)
  network(config.model)
  config.model.embedding_type = 'positional'
  config.model.scale_by_sigma = False
  config.model.ema_rate = 0.9999
  config.data.centered = True

  config.sde.name = sde
  config.sampling.eps = 1e-3  # score_sde samples VP and sub-VP down to t = 1e-3
  config.training.continuous = continuous
  config.training.reduce_mean = True
  config.sampling.predictor = 'euler_maruyama' if continuous else 'ancestral_sampling'
  config.sampling.corrector = 'none'
  return config
