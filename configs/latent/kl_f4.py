"""LDM's kl-f4 first stage: f = 4, 3 latent channels (256x256x3 -> 64x64x3), 55,312,063
parameters as LDM's and diffusers' code build it; LDM's loss and optimiser as kl-f8's
(configs/latent/kl_f8.py, autoencoder_kl_64x64x3.yaml).

  python main.py --config configs/latent/kl_f4.py --workdir workdir/kl_f4 --mode train \
      --config.autoencoder.lpips_weights=/path/to/lpips_vgg.safetensors
"""

import ml_collections

from configs.latent import kl_f8


def get_config() -> ml_collections.ConfigDict:
  return kl_f8.get_config('4')
