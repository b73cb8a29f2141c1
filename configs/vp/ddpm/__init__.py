"""DDPM (Ho et al., 2020) as score_sde's configs/vp/ddpm ship it.

The CIFAR-10 files are `configs.vp.vp_config` with `networks.ddpm`; the three
256-px files (LSUN bedroom and church, CelebA-HQ) share more, which
`ddpm_256_config` writes once.
"""

import ml_collections

from configs import networks
from configs.vp import vp_config


def ddpm_256_config(dataset: str) -> ml_collections.ConfigDict:
  """A 256-px config of score_sde's configs/vp/ddpm: discrete DDPM on LSUN's defaults.

  Args:
    dataset: the tfds name, one of `configs.datasets.LSUN_256`.

  Returns:
    The config, unlocked.
  """
  config = vp_config(dataset, networks.ddpm_256, continuous=False)
  config.sde.N = 1000  # DDPM's 1000 levels; the LSUN defaults have 2000
  config.optim.lr = 2e-5
  return config
