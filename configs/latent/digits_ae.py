"""Latent Diffusion's first stage on the bundled 8x8 digits: a KL autoencoder with f = 2
(latents 4x4x3, 48 numbers for 64 pixels), LDM's loss (L1, KL at 1e-6, a PatchGAN from step
1500 with the adaptive weight); no LPIPS, whose VGG weights cannot be downloaded and which
means nothing at 8x8. Trains on a 2-core CPU in minutes.

  python main.py --config configs/latent/digits_ae.py --workdir workdir/digits_ae --mode train
  python main.py --config configs/latent/digits_ae.py --workdir workdir/digits_ae --mode eval
"""

from configs.digits.common import digits_config


def get_config(variant: str = ''):
  config = digits_config(variant)
  config.training.task = 'autoencoder'
  a = config.autoencoder
  a.ch, a.ch_mult, a.num_res_blocks = 32, (1, 2), 1
  a.z_channels = a.embed_dim = 3
  a.norm_groups = 8
  # On 8x8 images a 3-layer PatchGAN would have no patches left: one stride-2 layer gives
  # 2x2 patches of 6x6 pixels.
  a.disc_layers, a.disc_ndf = 1, 32
  a.disc_start = 1500
  config.training.n_iters = 2500
  config.training.max_minutes = 8.0
  config.optim.beta1, config.optim.beta2 = 0.5, 0.9  # LDM's Adam
  config.eval.metrics = ('loss', 'reconstruction')
  if variant == 'tiny':
    a.ch, a.ch_mult, a.norm_groups = 8, (1, 2), 4
    a.disc_start = 1
  return config
