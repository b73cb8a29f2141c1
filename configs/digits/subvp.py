"""Sub-VP SDE (DDPM++ continuous) on the bundled 8x8 digits; trains on a 2-core CPU.

  python main.py --config configs/digits/subvp.py --workdir workdir/digits_subvp --mode train
"""

from configs.digits.vp import get_config as vp_config


def get_config(variant: str = ''):
  config = vp_config(variant)
  config.sde.name = 'subvpsde'
  return config
