"""Text to image on MNIST pairs: two real MNIST digits side by side on a 28x56 canvas with
the digit pairs' captions (data.bundled.MnistPairs, built on first use from tfds' `mnist`
in --config.data.data_dir), one stage at the full 28x56: the recipe that reads on the
digit pairs (configs/text/digit_pairs_16.py: v-prediction and its loss, word tokens,
multi-head attention with 2-D positions, the cosine schedule) at 28, 14 and 7 pixels high,
attending at 14 and 7. The text cascade's stages are configs/text/mnist_pairs_14.py and
mnist_pairs_sr.py.

  python main.py --config configs/text/mnist_pairs.py --workdir workdir/mnist_pairs \
      --mode train --config.data.data_dir=../shared/data/tfds
"""

from configs.text import digit_pairs_16


def get_config(variant: str = ''):
  config = digit_pairs_16.get_config(variant)
  config.data.dataset = 'mnist_pairs'
  config.data.image_size = (28, 56)
  config.data.levels = 256
  model = config.model
  model.ch_mult = (1, 2, 2)  # 28x56, 14x28 and 7x14
  config.training.n_iters = 1_000_000  # the wall-time budget, training.max_minutes, ends it
  config.eval.batch_size = 500
  config.eval.num_samples = 500
  if variant == 'tiny':
    model.ch_mult = (1,)
    config.eval.batch_size = 100
  else:
    model.attn_resolutions = (14, 7)
  return config
