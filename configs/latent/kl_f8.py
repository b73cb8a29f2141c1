"""LDM's kl-f8 first stage (Rombach et al. 2022; Stable Diffusion's VAE): a KL autoencoder
with f = 8 and 4 latent channels (256x256x3 -> 32x32x4), 83,653,863 parameters as LDM's
and diffusers' code build it; trained by LDM's loss (autoencoder_kl_32x32x4.yaml): L1 +
LPIPS + KL at 1e-6, a PatchGAN (3 layers, hinge loss, adaptive weight 0.5) from step 50001,
Adam(0.5, 0.9) at 4.5e-6 times the batch of 12.

LPIPS needs the lpips package's weights, which cannot be downloaded here: convert them once
(models/lpips.py says how) and set autoencoder.lpips_weights; LDM trained on OpenImages,
here on celeb_a_hq/256 (a manual tfds download): set data.dataset to yours.

  python main.py --config configs/latent/kl_f8.py --workdir workdir/kl_f8 --mode train \
      --config.autoencoder.lpips_weights=/path/to/lpips_vgg.safetensors
"""

import ml_collections

from configs.default import get_default_config


def get_config(f: str = '8') -> ml_collections.ConfigDict:
  """f '8' (kl-f8, 32x32x4 latents) or '4' (kl-f4, 64x64x3)."""
  if f not in ('8', '4'):
    raise ValueError(f"unknown config variant {f!r}; known: ['8', '4']")
  config = get_default_config()
  config.training.task = 'autoencoder'
  config.data.dataset = 'celeb_a_hq/256'
  config.data.image_size = 256
  config.data.num_channels = 3
  config.data.centered = True
  config.data.random_flip = True
  a = config.autoencoder
  a.ch, a.num_res_blocks, a.attn_resolutions = 128, 2, ()
  a.ch_mult = (1, 2, 4, 4) if f == '8' else (1, 2, 4)
  a.z_channels = a.embed_dim = 4 if f == '8' else 3
  a.rec_loss, a.kl_weight = 'l1', 1e-6
  a.disc_layers, a.disc_ndf, a.disc_start, a.disc_weight = 3, 64, 50001, 0.5
  a.perceptual_weight = 1.0
  config.model.ema_rate = 0.0  # LDM's autoencoders keep no EMA
  config.training.batch_size = 12
  config.training.n_iters = 500_001
  config.training.snapshot_freq = 50_000
  config.training.snapshot_freq_for_preemption = 5000
  config.training.snapshot_sampling = False
  config.optim.lr = 4.5e-6 * 12
  config.optim.beta1, config.optim.beta2 = 0.5, 0.9
  config.optim.warmup = 0
  config.optim.grad_clip = 0.0
  config.eval.batch_size = 64
  config.eval.metrics = ('loss', 'reconstruction')
  return config
