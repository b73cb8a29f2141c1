"""Text to image on the bundled digit pairs, GLIDE's way (the cascade's base stage, 8x8):
a DDPM++ (VP SDE) whose attention layers read the tokens of a jointly trained transformer
and whose time embedding gets its pooled feature; 20% of the captions are dropped to the
empty caption for classifier-free guidance. Trains on a 2-core CPU in the default job's
budget.

The recipe that makes the 16x16 model read its captions (configs/text/digit_pairs_16.py)
is not carried over here: at 8x8 each digit of a pair is 4x4 pixels, which even the
digits classifier that judges the pairs cannot read (1% of real 8x8 pairs), so there is
nothing to measure the reading by. A cascade whose base can be judged needs larger
images (28x28 data).

  python main.py --config configs/text/digit_pairs.py --workdir workdir/pairs --mode train
  python main.py --config configs/text/digit_pairs.py --workdir workdir/pairs --mode sample \
      --config.sampling.captions_file=prompts.txt --config.sampling.guidance_scale=3
"""

from configs.digits import vp


def get_config(variant: str = ''):
  config = vp.get_config(variant)
  config.data.dataset = 'digit_pairs'
  config.data.image_size = 8  # the 16x16 canvas, downsampled: the upsampler restores it
  config.data.caption_key = 'caption'
  text = config.text
  text.layers, text.width, text.heads = 2, 64, 4
  text.max_len = 32  # the longest caption has 29 bytes
  config.conditioning.caption_dropout = 0.2  # GLIDE
  config.sampling.guidance_scale = 2.0
  config.sampling.num_samples = config.sampling.batch_size = 64  # 8 test captions, 8 each
  if variant == 'tiny':
    text.layers, text.width, text.heads = 1, 16, 2
    config.sampling.num_samples = config.sampling.batch_size = 4
  return config
