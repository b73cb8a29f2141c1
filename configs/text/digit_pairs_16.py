"""A single-stage text-to-image model of the digit pairs at their full 16x16: the
baseline that the cascade (configs/text/digit_pairs.py, then digit_pairs_sr.py) is
compared with in BENCHMARKS.md, given the wall time of both its stages.

  python main.py --config configs/text/digit_pairs_16.py --workdir workdir/pairs_16 \
      --mode train --config.training.max_minutes=24
"""

from configs.text import digit_pairs_sr


def get_config(variant: str = ''):
  config = digit_pairs_sr.get_config(variant)  # the upsampler's network, without its input
  config.training.task = 'diffusion'
  config.conditioning.low_size = 0
  return config
