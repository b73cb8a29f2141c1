"""The mathematics of score-based generative modelling through SDEs, as pure JAX.

Modules: `sde` (forward SDEs and their coefficients, reverse SDE, probability-flow
ODE, denoiser), `parameterization` (network output <-> score), `losses`, `sampling`
(every sampler behind one contract, and the time grids), `ode` (the diffrax solve),
`likelihood` (probability-flow bits/dim), `vlb` (DDPM's variational bound in bits/dim),
`guidance` (classifier-free and classifier guidance as score
transforms), `conditioning` (label and caption dropout, a super-resolution model's low-resolution
input and its noise augmentation), `controllable` (inpainting and
colorization by replacement), `toy` (a Gaussian mixture with exact scores and class
posteriors), `utils`.
"""

from sde_lib import (conditioning, controllable, guidance, likelihood, losses, ode,
                     parameterization, sampling, toy, utils, vlb)
from sde_lib.sde import (SDE, SDES, VESDE, VPSDE, ReverseSDE, ScoreFn, SubVPSDE, denoiser,
                         get_sde, reverse)

__all__ = [
    'SDE', 'SDES', 'VESDE', 'VPSDE', 'ReverseSDE', 'ScoreFn', 'SubVPSDE', 'denoiser', 'get_sde',
    'conditioning', 'controllable', 'guidance', 'likelihood', 'losses', 'ode',
    'parameterization', 'reverse', 'sampling', 'toy', 'utils', 'vlb',
]
