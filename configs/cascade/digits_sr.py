"""A 4x4 -> 8x8 upsampler of the bundled digits with noise-conditioning augmentation, no
text: the super-resolution stage on its own. Its cascade samples from the base model of
configs/cascade/digits_4.py.

  python main.py --config configs/cascade/digits_sr.py --workdir workdir/digits_sr --mode train
  python main.py --config configs/cascade/digits_sr.py --workdir workdir/digits_sr \
      --mode sample --config.sampling.cascade_from=workdir/digits_4
"""

from configs.digits import vp


def get_config(variant: str = ''):
  config = vp.get_config(variant)
  config.training.task = 'super_resolution'
  config.conditioning.low_size = 4
  return config
