"""The base stage of the MNIST cascade: DDPM++ on MNIST downsampled to 14x14 (14 and 7
pixels), for the 14 -> 28 upsampler of configs/mnist/sr28.py.

  python main.py --config configs/mnist/base14.py --workdir workdir/mnist_base14 --mode train \
      --config.data.data_dir=../shared/data/tfds
"""

from configs.mnist.common import mnist_config


def get_config(variant: str = ''):
  config = mnist_config(variant)
  config.data.image_size = 14
  config.model.ch_mult = (1, 2)  # 14 and 7 pixels
  config.training.max_minutes = 10.0
  if variant == 'tiny':
    config.model.ch_mult = (1,)
  return config
