"""LDM-4 on CelebA-HQ 256 (Rombach et al. 2022, celebahq-ldm-vq-4.yaml) in scorelab's
terms: a score network on the 64x64x3 latents of the kl-f4 autoencoder
(configs/latent/kl_f4.py), the VP SDE on 1000 levels with betas 0.0015..0.0195, batch 48,
lr 2e-6 x 48.

LDM's own model differs in three ways, all said here: its first stage is VQ-regularised
(vq-f4), not KL; its betas are linear in sqrt(beta) ("linear" in LDM's code), ours linear in
beta; and its U-Net is ADM's (openaimodel.py: model_channels 224, channel_mult (1, 2, 3, 4),
2 residual blocks, attention with 32-channel heads at 32, 16 and 8 latent pixels; 274M
parameters in the paper's table), while this is DDPM++ with the same widths, depth and
attention resolutions (single-head attention, no scale-shift norm): 287,000,899
parameters, and the frozen kl-f4 55,312,063 beside them in its checkpoints
(tests/configs/test_configs.py).

  python main.py --config configs/latent/kl_f4.py --workdir workdir/kl_f4 --mode train
  python main.py --config configs/latent/celebahq256_ldm.py --workdir workdir/celebahq_ldm \
      --mode train --config.latent.autoencoder_workdir=workdir/kl_f4
"""

import ml_collections

from configs import networks
from configs.vp import vp_config


def get_config() -> ml_collections.ConfigDict:
  config = vp_config('celeb_a_hq/256', networks.ddpmpp, continuous=False)
  config.training.task = 'latent'
  config.latent.autoencoder_workdir = 'workdir/kl_f4'
  config.latent.scale = 0.0  # estimated: LDM's scale_by_std
  config.data.centered = True
  config.sde.N = 1000
  config.sde.beta_min, config.sde.beta_max = 1.5, 19.5  # betas 0.0015..0.0195 at N = 1000
  model = config.model
  model.nf, model.ch_mult, model.num_res_blocks = 224, (1, 2, 3, 4), 2
  model.attn_resolutions = (32, 16, 8)
  model.dropout = 0.0
  config.training.batch_size = 48
  config.optim.lr = 2e-6 * 48
  config.optim.warmup = 0
  config.eval.metrics = ('loss', 'fid', 'reconstruction')
  return config
