"""Class-conditional NCSN++ (continuous, VP SDE) on CIFAR-10 for classifier-free guidance.

62,698,883 parameters: Song et al.'s configs/vp/cifar10_ncsnpp_continuous.py (62,693,251)
with an embedding of the 10 classes and the null class added to the time embedding. 10% of the
training labels are dropped to the null class (Ho & Salimans 2021 found p_uncond = 0.1 and 0.2
about equally good, 0.5 worse). The VP SDE because Ho & Salimans' model is a continuous-time
VP noise predictor, as this one is; NCSN++ rather than DDPM++ for the architecture of the score
model that configs/guided/cifar10_ve_guided.py steers with a classifier (on the VE SDE), for
comparing the two guidances.

Guidance scale: ours is s, with s = 1 the plain conditional model and s = 0 the unconditional
one; Ho & Salimans' weight is w = s - 1. s = 1.3 is their w = 0.3; in their (ImageNet, not
CIFAR-10) sweeps FID is best for w around 0.1-0.3 and larger w trades FID for Inception Score.

  python main.py --config configs/guided/cifar10_ncsnpp_cfg.py \
      --workdir workdir/guided/cifar10_ncsnpp_cfg --mode train
  python main.py --config configs/guided/cifar10_ncsnpp_cfg.py \
      --workdir workdir/guided/cifar10_ncsnpp_cfg --mode sample \
      --config.sampling.class_labels=3,5 --config.sampling.guidance_scale=2
"""

import ml_collections

from configs.vp import cifar10_ncsnpp_continuous


def get_config() -> ml_collections.ConfigDict:
  config = cifar10_ncsnpp_continuous.get_config()
  config.model.num_classes = 10
  config.conditioning.label_dropout = 0.1
  config.sampling.guidance_scale = 1.3  # Ho & Salimans' w = s - 1 = 0.3
  config.sampling.num_samples = 80  # eight of each class, one grid row per class
  config.sampling.batch_size = 80  # divides among 1, 2, 4, 8 or 16 devices
  return config
