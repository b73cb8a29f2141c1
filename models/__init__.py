"""Flax (linen) score networks: NCSN++, DDPM++, DDPM, NCSN and NCSNv2; the
noise-conditional `Classifier` (their encoder half) for classifier guidance; and GLIDE's
`TextEncoder`, whose token features and pooled feature condition NCSN++ / DDPM++ on text;
and latent diffusion's first stage, `AutoencoderKL` (with `convert_state_dict` and
`read_safetensors` for PyTorch checkpoints) with the networks of its loss, the PatchGAN
`NLayerDiscriminator` and the `LPIPS` perceptual distance (VGG16, weights from a local
file: `load_lpips_params`).

`get_model(name)` returns a network class; every option is a keyword argument
(`get_model('ncsnpp')(nf=128, ch_mult=(1, 2, 2, 2), ...)`). `net_fn` turns a
network and its parameters into a function of (x, time input); what its output
means for an SDE is `sde_lib.parameterization`'s business, not the networks'.
"""

import flax.linen as nn

from models.autoencoder import (AutoencoderKL, DiagonalGaussian, apply_conv_out,
                                convert_state_dict, read_safetensors)
from models.classifier import Classifier
from models.discriminator import NLayerDiscriminator, discriminator_fn
from models.lpips import LPIPS, convert_lpips_state_dict, load_lpips_params
from models.ncsnpp import DDPM, NCSNpp
from models.ncsnv2 import NCSN, NCSNv2, NCSNv2_128, NCSNv2_256
from models.text_encoder import TextEncoder
from models.apply import net_fn

MODELS = {
    'ncsnpp': NCSNpp,  # DDPM++ too: NCSNpp(fir=False, embedding_type='positional', ...)
    'ddpm': DDPM,
    'ncsn': NCSN,  # v1: num_levels = the number of noise levels
    'ncsnv2_64': NCSNv2,
    'ncsnv2_128': NCSNv2_128,
    'ncsnv2_256': NCSNv2_256,
}


def get_model(name: str) -> type[nn.Module]:
  """The network class registered under `name`."""
  if name not in MODELS:
    raise ValueError(f'unknown model {name!r}; known: {sorted(MODELS)}')
  return MODELS[name]


__all__ = ['DDPM', 'LPIPS', 'MODELS', 'AutoencoderKL', 'Classifier', 'DiagonalGaussian', 'NCSN',
           'NCSNpp', 'NCSNv2', 'NCSNv2_128', 'NCSNv2_256', 'NLayerDiscriminator', 'TextEncoder',
           'apply_conv_out', 'convert_lpips_state_dict', 'convert_state_dict', 'discriminator_fn',
           'get_model', 'load_lpips_params', 'net_fn', 'read_safetensors']
