"""Improved DDPM on the bundled digits (Nichol & Dhariwal 2021): the VP SDE's discrete
levels with the cosine schedule, a network with learned variances trained by the hybrid
loss L_simple + 0.001 L_vlb, scored by DDPM's variational bound (bpd_vlb) beside the
probability-flow likelihood (bpd_ode), both at the digits' 17 grey levels.

  python main.py --config configs/digits/vp_learned.py --workdir workdir/digits_iddpm --mode train
  python main.py --config configs/digits/vp_learned.py --workdir workdir/digits_iddpm --mode eval
"""

from configs.digits import vp


def get_config(variant: str = ''):
  config = vp.get_config(variant)
  config.sde.schedule = 'cosine'
  config.training.continuous = False  # DDPM's discrete levels, as the bound's chain
  config.model.learned_variance = True
  config.eval.metrics = ('loss', 'bpd_ode', 'bpd_vlb', 'fid')
  return config
