"""VP SDE (DDPM++ continuous) on the bundled 8x8 digits; trains on a 2-core CPU.

  python main.py --config configs/digits/vp.py --workdir workdir/digits_vp --mode train
"""

from configs.digits.common import digits_config


def get_config(variant: str = ''):
  config = digits_config(variant)
  config.sde.name = 'vpsde'
  config.model.fir = False
  config.model.progressive_input = 'none'
  config.model.embedding_type = 'positional'
  config.model.scale_by_sigma = False
  config.training.reduce_mean = True
  config.sampling.predictor = 'euler_maruyama'
  config.sampling.corrector = 'none'
  return config
