"""Song et al.'s VE SDE configs (score_sde's configs/ve): what the NCSN++ and DDPM ones share.

score_sde's eleven configs/ve/*.py files repeat one block: the VE SDE, sampled
down to t = 1e-5 by the reverse-diffusion predictor and a Langevin corrector, a
network that scales its output by 1 / sigma, an EMA rate of 0.999. `ve_config`
writes it once; each experiment file names its dataset and network and sets
what else differs. NCSN and NCSNv2 (configs/ve/ncsn, configs/ve/ncsnv2) sample
with annealed Langevin dynamics instead and have functions of their own.
"""

from collections.abc import Callable

import ml_collections

from configs import datasets
from configs.default import get_default_config


def ve_config(dataset: str, network: Callable[[ml_collections.ConfigDict], None], *,
              continuous: bool) -> ml_collections.ConfigDict:
  """A config of score_sde's configs/ve with an NCSN++ or DDPM network.

  Args:
    dataset: the tfds name, whose score_sde defaults apply (see
      `datasets.apply_defaults`).
    network: a function of configs/networks.py that sets config.model's keys.
    continuous: train on continuous time (Fourier features of log sigma embed
      the noise level) or on the SDE's N discrete levels (SMLD's loss;
      positional embeddings of the level).

  Returns:
    The config, unlocked.
  """
  config = get_default_config()
  datasets.apply_defaults(config, dataset)
  network(config.model)
  config.model.embedding_type = 'fourier' if continuous else 'positional'
  config.model.scale_by_sigma = True
  config.model.ema_rate = 0.999

  config.sde.name = 'vesde'
  config.sampling.eps = 1e-5  # score_sde samples VE down to t = 1e-5 (VP, sub-VP: 1e-3)
  config.training.continuous = continuous
  config.sampling.predictor = 'reverse_diffusion'
  config.sampling.corrector = 'langevin'
  return config
