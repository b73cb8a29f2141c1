"""The oracle of the text recipe (configs/text/digit_pairs_16.py): the same network, loss
and budget given the pair's label 10 * left + right (100 classes, 10% dropped to the null
class for classifier-free guidance) instead of its caption. What it reaches is how well the
recipe's network draws two digits in place; the text model's gap to it is what reading the
caption costs (BENCHMARKS.md, "Text that is read").

  python main.py --config configs/text/digit_pairs_16_labels.py \
      --workdir workdir/pairs_16_labels --mode train
"""

from configs.text import digit_pairs_16


def get_config(variant: str = ''):
  config = digit_pairs_16.get_config(variant)
  config.data.caption_key = ''
  config.text.layers = 0
  config.text.tokenizer = 'bytes'
  config.conditioning.caption_dropout = 0.0
  config.model.num_classes = 100
  config.conditioning.label_dropout = 0.1
  # 64 samples: 8 of each of the first 8 pairs, as the text model's sheet has 8 captions
  config.sampling.class_labels = '0,1,2,3,4,5,6,7'
  return config
