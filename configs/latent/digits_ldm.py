"""Latent diffusion on the bundled digits: the default job's DDPM++ (VP SDE, continuous
time) on the 4x4x3 latents of the autoencoder of configs/latent/digits_ae.py, scaled to unit
std (latent.scale = 0 estimates it); samples are decoded to 8x8 digits.

  python main.py --config configs/latent/digits_ae.py --workdir workdir/digits_ae --mode train
  python main.py --config configs/latent/digits_ldm.py --workdir workdir/digits_ldm --mode train \
      --config.latent.autoencoder_workdir=workdir/digits_ae
  python main.py --config configs/latent/digits_ldm.py --workdir workdir/digits_ldm --mode sample
"""

from configs.digits import vp


def get_config(variant: str = ''):
  config = vp.get_config(variant)
  config.training.task = 'latent'
  config.latent.autoencoder_workdir = 'workdir/digits_ae'
  config.model.ch_mult = (1, 2)  # 4 and 2 latent pixels
  config.model.attn_resolutions = (2,)
  config.eval.metrics = ('loss', 'fid', 'reconstruction')
  if variant == 'tiny':
    config.model.attn_resolutions = ()
  return config
