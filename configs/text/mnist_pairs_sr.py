"""The upsampler of the MNIST pairs' text cascade: 14x28 -> 28x56 given the low-resolution
image (noise-conditioning augmentation, as configs/cascade/digits_sr.py measured) and the
caption; its samples start from the base of configs/text/mnist_pairs_14.py.

  python main.py --config configs/text/mnist_pairs_sr.py --workdir workdir/mnist_pairs_sr \
      --mode train --config.data.data_dir=../shared/data/tfds
  python main.py --config configs/text/mnist_pairs_sr.py --workdir workdir/mnist_pairs_sr \
      --mode eval --config.data.data_dir=../shared/data/tfds \
      --config.sampling.cascade_from=workdir/mnist_pairs_14
"""

from configs.text import mnist_pairs


def get_config(variant: str = ''):
  config = mnist_pairs.get_config(variant)
  config.training.task = 'super_resolution'
  config.conditioning.low_size = (14, 28)
  config.conditioning.aug_max = 0.05
  config.conditioning.aug_level = 0.02
  config.training.max_minutes = 8.0  # after the base's 12: the single stage's 20 in all
  if variant != 'tiny':
    config.model.nf = 16  # its input already holds the digits' shapes
    config.model.attn_head_channels = 16
  return config
