"""The cascade's upsampler for the digit pairs, GLIDE's way: 8x8 -> 16x16, given the
low-resolution image (bilinearly upsampled and concatenated to the input, diffused to a
random level s in training: noise-conditioning augmentation) and the caption (read by its
own text encoder). Trains on a 2-core CPU in the default job's budget; sampling runs the
whole cascade from the base model's workdir.

  python main.py --config configs/text/digit_pairs_sr.py --workdir workdir/pairs_sr --mode train
  python main.py --config configs/text/digit_pairs_sr.py --workdir workdir/pairs_sr \
      --mode sample --config.sampling.cascade_from=workdir/pairs
"""

from configs.text import digit_pairs


def get_config(variant: str = ''):
  config = digit_pairs.get_config(variant)
  config.training.task = 'super_resolution'
  config.data.image_size = 16
  config.conditioning.low_size = 8
  config.model.ch_mult = (1, 2, 2)  # 16, 8 and 4 pixels
  config.model.attn_resolutions = (4,)
  config.training.batch_size = 64  # a 16x16 step costs ~4 of the base's 8x8 ones
  # Light noise-conditioning augmentation: at this budget a noisier input is not learnt
  # (configs/cascade/digits_sr.py says what was measured on the digits).
  config.conditioning.aug_max = 0.05
  config.conditioning.aug_level = 0.02
  if variant == 'tiny':
    config.model.ch_mult = (1, 1)
    config.model.attn_resolutions = ()
    config.training.batch_size = 8
  return config
