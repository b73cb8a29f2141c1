"""The base of the MNIST pairs' text cascade: configs/text/mnist_pairs.py at half the size,
14x28 (14x28 and 7x14 pixels, attending at both), for the 14x28 -> 28x56 upsampler of
configs/text/mnist_pairs_sr.py.

  python main.py --config configs/text/mnist_pairs_14.py --workdir workdir/mnist_pairs_14 \
      --mode train --config.data.data_dir=../shared/data/tfds
"""

from configs.text import mnist_pairs


def get_config(variant: str = ''):
  config = mnist_pairs.get_config(variant)
  config.data.image_size = (14, 28)
  # With the upsampler's 8, the single stage's 20 minutes: the base reads the captions.
  config.training.max_minutes = 12.0
  if variant != 'tiny':
    config.model.ch_mult = (1, 2)
    config.model.attn_resolutions = (14, 7)
  return config
