"""Classifier-free guidance scales on the class-conditional digits model: FD, KID, IS and
class accuracy of class-balanced samples in the digit classifier's features against the
scale.

Train configs/guided/digits_cfg.py into workdir/digits_cfg first, then

  python main.py --config configs/sweeps/digits_guidance.py --workdir workdir/digits_cfg \\
      --mode sweep

Only sampling.* changes, so every point evaluates the checkpoint in the workdir; the table
and the plot of FD against the scale land in workdir/digits_cfg/sweep/.
"""

from configs.guided import digits_cfg

SCALES = (0.0, 1.0, 1.5, 2.0, 3.0, 5.0)  # 0: the unconditional model, 1: the conditional one


def get_config():
  config = digits_cfg.get_config()
  config.eval.metrics = ('fid',)
  config.sweep.metric = 'fd'
  config.sweep.x = 'sampling.guidance_scale'
  return config


def sweep():
  return [{'sampling.guidance_scale': s} for s in SCALES]
