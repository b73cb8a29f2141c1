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
  # Light noise-conditioning augmentation. Trained 400 steps of 64 (EMA parameters; x(0)
  # predicted from x(t = 0.3) of 100 test digits given their own 4x4 input at level 0,
  # against another image's), s ~ U[0, aug_max T] reads its input for aug_max 0 (squared
  # error 0.019 against 0.126) and 0.05 (0.029 against 0.105), less at 0.1 (0.041 against
  # 0.085) and 0.2 (0.060 against 0.069), not at 0.5 (0.066 against 0.068, and 0.062
  # against 0.064 after 1600 steps) or 1. At 0.5 neither dropping the level's embedding,
  # nor data in [-1, 1], nor scale-shift norm changed that; the same levels without the
  # noise did (0.020 against 0.127): the noise is what is slow to learn through.
  config.conditioning.aug_max = 0.05
  config.conditioning.aug_level = 0.02
  return config
