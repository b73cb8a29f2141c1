"""The upsampler of the MNIST cascade: 14x14 -> 28x28 with noise-conditioning augmentation;
its samples start from the base of configs/mnist/base14.py. Its budget with the base's is
the pixel model's 20 minutes.

  python main.py --config configs/mnist/sr28.py --workdir workdir/mnist_sr28 --mode train \
      --config.data.data_dir=../shared/data/tfds
  python main.py --config configs/mnist/sr28.py --workdir workdir/mnist_sr28 --mode eval \
      --config.data.data_dir=../shared/data/tfds --config.sampling.cascade_from=workdir/mnist_base14
"""

from configs.mnist.common import mnist_config


def get_config(variant: str = ''):
  config = mnist_config(variant)
  config.training.task = 'super_resolution'
  config.conditioning.low_size = 14
  # configs/cascade/digits_sr.py measured how fast an upsampler learns to read a noisy
  # input: light augmentation.
  config.conditioning.aug_max = 0.05
  config.conditioning.aug_level = 0.02
  # Its input already holds the digit's shape: a quarter of the pixel model's widths
  # (0.54 s/step against 1.6 on 2 cores) buys three times the steps.
  config.model.nf = 16
  config.training.max_minutes = 10.0
  return config
