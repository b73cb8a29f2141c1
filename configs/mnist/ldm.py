"""Latent diffusion on MNIST: DDPM++ (VP SDE, continuous time) on the 7x7x3 latents of
configs/mnist/ae.py, scaled to unit std (latent.scale = 0 estimates it); samples are
decoded to 28x28. Its budget with the autoencoder's is the pixel model's 20 minutes.

  python main.py --config configs/mnist/ae.py --workdir workdir/mnist_ae --mode train \
      --config.data.data_dir=../shared/data/tfds
  python main.py --config configs/mnist/ldm.py --workdir workdir/mnist_ldm --mode train \
      --config.data.data_dir=../shared/data/tfds --config.latent.autoencoder_workdir=workdir/mnist_ae
  python main.py --config configs/mnist/ldm.py --workdir workdir/mnist_ldm --mode eval \
      --config.data.data_dir=../shared/data/tfds
"""

from configs.mnist.common import mnist_config


def get_config(variant: str = ''):
  config = mnist_config(variant)
  config.training.task = 'latent'
  config.latent.autoencoder_workdir = 'workdir/mnist_ae'
  model = config.model
  model.nf = 64
  model.ch_mult = (1,)  # 7x7 latents: one resolution (7 is odd)
  model.num_res_blocks = 2
  model.attn_resolutions = (7,)
  config.training.max_minutes = 14.0
  config.eval.metrics = ('loss', 'fid', 'reconstruction')
  if variant == 'tiny':
    model.nf, model.num_res_blocks, model.attn_resolutions = 8, 1, ()
    config.latent.scale_batches = 1
  return config
