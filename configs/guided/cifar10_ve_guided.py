"""Song et al.'s class-conditional CIFAR-10 samples (controllable generation): the VE NCSN++
(continuous) score model of configs/ve/cifar10_ncsnpp_continuous.py, unchanged, guided by the
noise-conditional classifier of configs/guided/cifar10_ve_classifier.py: 62,758,915 +
25,502,858 parameters.

sampling.classifier_workdir is a placeholder: set it to the classifier's workdir. Train the
score model with configs/ve/cifar10_ncsnpp_continuous.py (this config loads the classifier when
a job starts), then sample or evaluate its workdir with this one. Scale s = 1 (the default)
adds grad log p(y | x_t, t) once, the conditional score of Bayes' rule as Song et al. sample;
s > 1 sharpens the classes (Dhariwal & Nichol).

  python main.py --config configs/ve/cifar10_ncsnpp_continuous.py \
      --workdir workdir/ve/cifar10_ncsnpp_continuous --mode train
  python main.py --config configs/guided/cifar10_ve_classifier.py \
      --workdir workdir/guided/cifar10_ve_classifier --mode train
  python main.py --config configs/guided/cifar10_ve_guided.py \
      --workdir workdir/ve/cifar10_ncsnpp_continuous --mode sample \
      --config.sampling.classifier_workdir=workdir/guided/cifar10_ve_classifier \
      --config.sampling.class_labels=3,5
"""

import ml_collections

from configs.ve import cifar10_ncsnpp_continuous


def get_config() -> ml_collections.ConfigDict:
  config = cifar10_ncsnpp_continuous.get_config()
  config.sampling.guidance = 'classifier'
  # Placeholder: the workdir that configs/guided/cifar10_ve_classifier.py trained in.
  config.sampling.classifier_workdir = 'workdir/guided/cifar10_ve_classifier'
  config.sampling.guidance_scale = 1.0
  config.sampling.num_samples = 80  # eight of each class, one grid row per class
  config.sampling.batch_size = 80  # divides among 1, 2, 4, 8 or 16 devices
  return config
