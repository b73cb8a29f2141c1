"""The base stage of a cascade without text on the bundled digits: the VP digits model of
the default job at 4x4 (the digits downsampled), for the 4 -> 8 upsampler of
configs/cascade/digits_sr.py.

  python main.py --config configs/cascade/digits_4.py --workdir workdir/digits_4 --mode train
"""

from configs.digits import vp


def get_config(variant: str = ''):
  config = vp.get_config(variant)
  config.data.image_size = 4
  config.model.ch_mult = (1, 2)  # 4 and 2 pixels
  config.model.attn_resolutions = (2,)
  if variant == 'tiny':
    config.model.ch_mult = (1,)
    config.model.attn_resolutions = ()
  return config
