"""A noise-conditional CIFAR-10 classifier on the VE SDE, for classifier guidance of
configs/ve/cifar10_ncsnpp_continuous.py (see configs/guided/cifar10_ve_guided.py).

Song et al. (2021, controllable generation) guide that score model with a noise-conditional
Wide-ResNet 28-10 (about 36.5M parameters); we use ADM's classifier instead (Dhariwal & Nichol
2021): the encoder half of the score model's NCSN++ (the same options and Fourier embedding of
sigma), attention pooling and a linear head over the 10 classes, 25,502,858 parameters. It is
trained on images noised by the same VE SDE (sigma_min = 0.01, sigma_max = 50: sampling checks
that they match), with the score model's optimiser, batch and steps (shorten them with
--config.training.n_iters).

  python main.py --config configs/guided/cifar10_ve_classifier.py \
      --workdir workdir/guided/cifar10_ve_classifier --mode train
  python main.py --config configs/guided/cifar10_ve_classifier.py \
      --workdir workdir/guided/cifar10_ve_classifier --mode eval  # cross-entropy, accuracy
"""

import ml_collections

from configs.ve import cifar10_ncsnpp_continuous


def get_config() -> ml_collections.ConfigDict:
  config = cifar10_ncsnpp_continuous.get_config()
  config.training.task = 'classifier'
  config.eval.metrics = ('loss', 'accuracy')
  config.model.num_outputs = 10
  config.model.pooling = 'attention'  # ADM's
  return config
