"""Reference data of models/autoencoder.py from PyTorch: a tiny AutoencoderKL in both layouts.

Runs in the peer interpreter (torch, diffusers, safetensors), never in the project's. It
builds a tiny diffusers `AutoencoderKL` with random weights (3 levels, f = 4, widths
4/8/8, one residual block per level, 2 GroupNorm groups, self-attention at the smallest
level of 16x16 images and in the middle, 2 latent channels), and CompVis/LDM's own Encoder
and Decoder of the same architecture from latent-diffusion's
`ldm/modules/diffusionmodules/model.py` (read from the path given; its `Normalize` is
patched to 2 groups, its only hard-coded width constraint). The diffusers weights are
copied into the LDM modules by the key mapping `compvis_key` below (written here: LDM has
no converter), loaded strictly, and both networks must give the same outputs, which checks
the mapping. Written to tests/testdata:

- vae_diffusers_tiny.safetensors: the diffusers state dict;
- vae_compvis_tiny.safetensors: the same weights as LDM's `AutoencoderKL` state dict
  (encoder, decoder, quant_conv, post_quant_conv; no loss);
- vae_tiny_reference.npz: a fixed input x [2, 16, 16, 3] in [-1, 1] and the PyTorch
  posterior mean and logvar [2, 4, 4, 2] and decode(mean) [2, 16, 16, 3], all NHWC,
  float32, and the architecture (norm_groups, resolution, attn_resolutions).

The command that made them (from the repository root; the LDM file from the
CompVis/latent-diffusion snapshot at a506df5, whose mirror is a git directory):

  git --git-dir=/work/.mirror/CompVis+latent-diffusion/repo show \\
      HEAD:ldm/modules/diffusionmodules/model.py > /tmp/ldm_model.py
  ~/peervenv/bin/python benchmarks/autoencoder_reference.py --ldm-model /tmp/ldm_model.py

(diffusers 0.42.1, torch 2.13.0 CPU.)
"""

import argparse
import importlib.util
import pathlib
import re
import sys
import types

import numpy as np
import torch
from diffusers import AutoencoderKL
from safetensors.torch import save_file

ROOT = pathlib.Path(__file__).resolve().parents[1]
CH, CH_MULT, NUM_RES_BLOCKS, GROUPS, Z_CHANNELS = 4, (1, 2, 2), 1, 2, 2
RESOLUTION, ATTN_RESOLUTIONS = 16, (4,)  # attention at the smallest level, 16 / 2^2


def load_ldm_model(path: str) -> types.ModuleType:
  """LDM's model.py as a module. Its imports that the Encoder and Decoder do not use (einops,
  ldm.util, the linear attention) are stubbed: the peer has no latent-diffusion install."""
  for name in ['einops', 'ldm', 'ldm.util', 'ldm.modules', 'ldm.modules.attention']:
    sys.modules.setdefault(name, types.ModuleType(name))
  sys.modules['einops'].rearrange = None
  sys.modules['ldm.util'].instantiate_from_config = None
  sys.modules['ldm.modules.attention'].LinearAttention = torch.nn.Module
  spec = importlib.util.spec_from_file_location('ldm_model', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  # LDM hard-codes 32 groups; the tiny widths need fewer (diffusers' norm_num_groups).
  module.Normalize = lambda in_channels, num_groups=GROUPS: torch.nn.GroupNorm(
      GROUPS, in_channels, eps=1e-6, affine=True)
  return module


def compvis_key(key: str, num_levels: int) -> str:
  """LDM's name of a diffusers AutoencoderKL key."""
  up = lambda kind: lambda m: f'decoder.up.{num_levels - 1 - int(m[1])}.{kind}'
  for pattern, replacement in [
      (r'conv_norm_out', 'norm_out'),
      (r'mid_block\.resnets\.(\d)', lambda m: f'mid.block_{int(m[1]) + 1}'),
      (r'mid_block\.attentions\.0', 'mid.attn_1'),
      (r'encoder\.down_blocks\.(\d+)\.resnets', r'encoder.down.\1.block'),
      (r'encoder\.down_blocks\.(\d+)\.attentions', r'encoder.down.\1.attn'),
      (r'encoder\.down_blocks\.(\d+)\.downsamplers\.0', r'encoder.down.\1.downsample'),
      (r'decoder\.up_blocks\.(\d+)\.resnets', up('block')),
      (r'decoder\.up_blocks\.(\d+)\.attentions', up('attn')),
      (r'decoder\.up_blocks\.(\d+)\.upsamplers\.0', up('upsample')),
      (r'conv_shortcut', 'nin_shortcut'), (r'group_norm', 'norm'), (r'to_q', 'q'),
      (r'to_k', 'k'), (r'to_v', 'v'), (r'to_out\.0', 'proj_out')]:
    key = re.sub(pattern, replacement, key)
  return key


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--ldm-model', required=True,
                      help="path of latent-diffusion's ldm/modules/diffusionmodules/model.py")
  parser.add_argument('--out', default=str(ROOT / 'tests' / 'testdata'))
  args = parser.parse_args()
  torch.manual_seed(0)
  num_levels = len(CH_MULT)
  sizes = [RESOLUTION // 2**level for level in range(num_levels)]
  attends = [size in ATTN_RESOLUTIONS for size in sizes]
  diffusers_vae = AutoencoderKL(
      in_channels=3, out_channels=3, latent_channels=Z_CHANNELS, norm_num_groups=GROUPS,
      block_out_channels=tuple(CH * m for m in CH_MULT), layers_per_block=NUM_RES_BLOCKS,
      down_block_types=tuple('AttnDownEncoderBlock2D' if a else 'DownEncoderBlock2D'
                             for a in attends),
      up_block_types=tuple('AttnUpDecoderBlock2D' if a else 'UpDecoderBlock2D'
                           for a in reversed(attends))).eval()
  with torch.no_grad():
    # GroupNorms start at scale 1 and bias 0: random ones check that they are read too.
    for name, p in diffusers_vae.named_parameters():
      if 'norm' in name:
        p.copy_((1.0 if name.endswith('weight') else 0.0) + 0.3 * torch.randn_like(p))

  ldm = load_ldm_model(args.ldm_model)
  ddconfig = dict(ch=CH, out_ch=3, ch_mult=CH_MULT, num_res_blocks=NUM_RES_BLOCKS,
                  attn_resolutions=list(ATTN_RESOLUTIONS), dropout=0.0, in_channels=3,
                  resolution=RESOLUTION, z_channels=Z_CHANNELS, double_z=True)
  ldm_vae = torch.nn.Module()
  ldm_vae.encoder, ldm_vae.decoder = ldm.Encoder(**ddconfig), ldm.Decoder(**ddconfig)
  ldm_vae.quant_conv = torch.nn.Conv2d(2 * Z_CHANNELS, 2 * Z_CHANNELS, 1)
  ldm_vae.post_quant_conv = torch.nn.Conv2d(Z_CHANNELS, Z_CHANNELS, 1)
  ldm_vae.eval()
  diffusers_state = {k: v.contiguous() for k, v in diffusers_vae.state_dict().items()}
  ldm_shapes = {k: v.shape for k, v in ldm_vae.state_dict().items()}
  compvis_state = {}
  for key, value in diffusers_state.items():
    new = compvis_key(key, num_levels)
    # diffusers' attention layers are Linear, LDM's 1x1 convs.
    compvis_state[new] = value.reshape(ldm_shapes[new]).contiguous()
  ldm_vae.load_state_dict(compvis_state, strict=True)

  x = torch.rand(2, 3, RESOLUTION, RESOLUTION, generator=torch.Generator().manual_seed(1)) * 2 - 1
  with torch.no_grad():
    posterior = diffusers_vae.encode(x).latent_dist
    decoded = diffusers_vae.decode(posterior.mean).sample
    moments = ldm_vae.quant_conv(ldm_vae.encoder(x))
    ldm_mean, ldm_logvar = torch.chunk(moments, 2, dim=1)
    ldm_decoded = ldm_vae.decoder(ldm_vae.post_quant_conv(ldm_mean))
  for name, a, b in [('mean', posterior.mean, ldm_mean),
                     ('logvar', posterior.logvar, ldm_logvar.clamp(-30, 20)),
                     ('decoded', decoded, ldm_decoded)]:
    error = float((a - b).abs().max())
    print(f'{name}: max |diffusers - LDM| = {error:.2e}')
    assert error < 1e-5, name

  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  save_file(diffusers_state, str(out / 'vae_diffusers_tiny.safetensors'))
  save_file(compvis_state, str(out / 'vae_compvis_tiny.safetensors'))
  nhwc = lambda t: t.permute(0, 2, 3, 1).numpy().astype(np.float32)
  np.savez(out / 'vae_tiny_reference.npz', x=nhwc(x), mean=nhwc(posterior.mean),
           logvar=nhwc(posterior.logvar), decoded=nhwc(decoded), norm_groups=GROUPS,
           resolution=RESOLUTION, attn_resolutions=np.array(ATTN_RESOLUTIONS))
  print(f'{sum(v.numel() for v in diffusers_state.values())} parameters; wrote {out}')


if __name__ == '__main__':
  main()
