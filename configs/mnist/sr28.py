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
  # v-prediction and its loss: the input says most where x(t) says least, at high noise,
  # where the noise-prediction loss weights x(0) by SNR -> 0. After 4 minutes (~510 steps)
  # x(0) predicted given its own 14x14 input against another test image's
  # (benchmarks/upsampler_reads.py, 200 test images): squared error 0.0077 against 0.130
  # at t = 0.8 T with v, 1.03 against 1.17 with the noise loss (0.007 against 0.08-0.10
  # for both at 0.2 T): the noise loss's upsampler ignored its input at high noise, where
  # the sampler lays out the digit (BENCHMARKS.md, "MNIST at 28x28").
  config.model.output = 'v'
  config.training.loss_weighting = 'v'
  # Its input already holds the digit's shape: a quarter of the pixel model's widths
  # (0.54 s/step against 1.6 on 2 cores) buys three times the steps.
  config.model.nf = 16
  config.training.max_minutes = 10.0
  return config
