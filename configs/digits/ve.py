"""VE SDE (NCSN++ continuous) on the bundled 8x8 digits; trains on a 2-core CPU.

  python main.py --config configs/digits/ve.py --workdir workdir/digits_ve --mode train
"""

from configs.digits.common import digits_config


def get_config(variant: str = ''):
  config = digits_config(variant)
  config.sde.name = 'vesde'
  # Song & Ermon (2020): sigma_max ~ the largest distance between two training points (4.8).
  config.sde.sigma_max = 5.0
  config.model.scale_by_sigma = True
  config.model.embedding_type = 'fourier'
  return config
