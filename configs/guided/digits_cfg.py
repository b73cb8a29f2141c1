"""Class-conditional DDPM++ (VP SDE) on the bundled 8x8 digits, trained for classifier-free
guidance: 15% of the labels are dropped to the null class. Trains on a 2-core CPU in the
default job's budget.

  python main.py --config configs/guided/digits_cfg.py --workdir workdir/digits_cfg --mode train
  python main.py --config configs/guided/digits_cfg.py --workdir workdir/digits_cfg \
      --mode sample --config.sampling.class_labels=3,7 --config.sampling.guidance_scale=2
"""

from configs.digits import vp


def get_config(variant: str = ''):
  config = vp.get_config(variant)
  config.model.num_classes = 10
  config.conditioning.label_dropout = 0.15  # Ho & Salimans: 0.1-0.2
  config.sampling.num_samples = 60  # six of each class, one row per class
  config.sampling.batch_size = 60
  return config
