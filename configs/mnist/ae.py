"""Latent Diffusion's first stage on MNIST: a KL autoencoder with f = 4 (28x28 -> 7x7x3
latents, 147 numbers for 784 pixels), LDM's loss (L1, KL at 1e-6, a 2-layer PatchGAN with
the adaptive weight from step 1500); no LPIPS (optional: its VGG weights are a local file,
autoencoder.lpips_weights, and VGG sees little in 28x28 grey digits).

  python main.py --config configs/mnist/ae.py --workdir workdir/mnist_ae --mode train \
      --config.data.data_dir=../shared/data/tfds
"""

from configs.mnist.common import mnist_config


def get_config(variant: str = ''):
  config = mnist_config(variant)
  config.training.task = 'autoencoder'
  a = config.autoencoder
  a.ch, a.ch_mult, a.num_res_blocks = 16, (1, 2, 2), 1  # 28, 14, 7 pixels: f = 4
  a.z_channels = a.embed_dim = 3
  a.norm_groups = 8
  a.mid_attention = False
  a.disc_layers, a.disc_ndf = 2, 32
  a.disc_start = 1500
  config.training.max_minutes = 6.0
  config.training.eval_freq = 500
  config.optim.beta1, config.optim.beta2 = 0.5, 0.9  # LDM's Adam
  config.eval.metrics = ('loss', 'reconstruction')
  if variant == 'tiny':
    a.ch, a.ch_mult, a.norm_groups = 8, (1, 2, 2), 4
    a.disc_layers, a.disc_start = 1, 1
  return config
