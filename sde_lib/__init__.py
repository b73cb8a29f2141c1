"""The mathematics of score-based generative modelling through SDEs, as pure JAX.

Modules: `sde` (forward SDEs, reverse SDE, probability-flow ODE), `losses`,
`sampling` (predictor-corrector and ODE samplers), `likelihood` (bits/dim),
`toy` (a Gaussian mixture with exact scores), `utils`.
"""

from sde_lib import likelihood, losses, sampling, toy, utils
from sde_lib.sde import (SDE, SDES, VESDE, VPSDE, ReverseSDE, ScoreFn, SubVPSDE, denoiser,
                         get_sde, reverse)

__all__ = [
    'SDE', 'SDES', 'VESDE', 'VPSDE', 'ReverseSDE', 'ScoreFn', 'SubVPSDE', 'denoiser', 'get_sde',
    'likelihood', 'losses', 'reverse', 'sampling', 'toy', 'utils',
]
