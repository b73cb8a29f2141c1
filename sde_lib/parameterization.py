"""What a score network predicts and which time input it sees: network output <-> score.

A `Parameterization` is chosen once, where the config is read, and turns a network
function `net_fn(x [B, ...], time_cond [B]) -> output [B, ...]` into the score
function the samplers, losses and likelihood use, and into a denoiser (the
x(0)-prediction). With x(t) = alpha x(0) + std z the three outputs are

  eps:   output = -std * score                      (DDPM, VP/sub-VP networks)
  score: output = score, or std * score with scale_by_sigma   (NCSN, VE networks)
  x0:    output = (x + std^2 score) / alpha          (Tweedie's E[x(0) | x(t)])
  v:     output = alpha eps - std x0                  (Salimans & Ho 2022)

and the time inputs are t * 999 (score_sde's continuous VP/sub-VP), DDPM's index
t * (N - 1), sigma = std / alpha (continuous VE) and NCSN's level counted from the
largest sigma. The discrete time inputs come with the discrete levels' own alpha
and std (DDPM's alphas_cumprod, SMLD's sigmas), as networks trained on them expect.

With `learned_variance` (improved DDPM) the network's output has twice the data's
channels on the last axis: the first half is what `output` says, the second is v, the
interpolation of the reverse step's log-variance between beta-tilde (v = -1) and beta
(v = 1) that `vlb.learned_range_kernel` reads. `score_fn` and `denoise_fn` read the
first half, so samplers use such a network unchanged; `score_and_v_fn` gives the score
and v from one call, for the bound and `losses.hybrid_loss`.
"""

import dataclasses
from collections.abc import Callable

import jax

from sde_lib.sde import SDE, VESDE, ScoreFn, SubVPSDE, VPSDE
from sde_lib.utils import batch_broadcast

NetFn = Callable[[jax.Array, jax.Array], jax.Array]
"""net_fn(x [B, ...], time_cond [B]) -> the network's raw output [B, ...] (with learned
variances [B, ..., 2C] for x [B, ..., C])."""

ScoreAndVFn = Callable[[jax.Array, jax.Array], tuple[jax.Array, jax.Array]]
"""score_and_v_fn(x [B, ...], t [B]) -> (score [B, ...], v [B, ...]) from one network call."""

OUTPUTS = ('eps', 'score', 'x0', 'v')
TIME_INPUTS = ('t999', 'ddpm_index', 'sigma', 'ncsn_level')
_DISCRETE_TIME_INPUTS = ('ddpm_index', 'ncsn_level')


@dataclasses.dataclass(frozen=True)
class Parameterization:
  """How a network's output and time input relate to the score of an SDE.

  Attributes:
    output: what the network predicts, one of OUTPUTS.
    time_input: the time conditioning it is given, one of TIME_INPUTS.
    scale_by_sigma: a 'score' network's output is divided by std (NCSN++'s
      output scaling); ignored by the other outputs.
    learned_variance: the network's output carries improved DDPM's variance
      interpolation v as a second half of its channels (last axis).
  """

  output: str = 'eps'
  time_input: str = 't999'
  scale_by_sigma: bool = False
  learned_variance: bool = False

  def __post_init__(self):
    for name, value, known in (('output', self.output, OUTPUTS),
                               ('time_input', self.time_input, TIME_INPUTS)):
      if value not in known:
        raise ValueError(f'unknown parameterisation {name} {value!r}; known: {list(known)}')

  @property
  def discrete(self) -> bool:
    """Whether the network was trained on the SDE's N discrete levels."""
    return self.time_input in _DISCRETE_TIME_INPUTS

  def time_condition(self, sde: SDE, t: jax.Array) -> jax.Array:
    """The network's time input at times t [B]."""
    if self.time_input == 't999':
      return t * 999
    if self.time_input == 'ddpm_index':
      return t * (sde.N - 1)
    if self.time_input == 'sigma':
      return sde.std(t) / sde.alpha(t)
    return (sde.N - 1 - sde.timestep(t)).astype(t.dtype)

  def coefficients(self, sde: SDE, t: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(alpha, std) [B] that the network's output is read with at times t."""
    if self.discrete:
      return sde.discrete_marginal(t)
    return sde.alpha(t), sde.std(t)

  def score(self, sde: SDE, output: jax.Array, x: jax.Array, t: jax.Array) -> jax.Array:
    """The score [B, ...] that the network output [B, ...] at (x, t) stands for."""
    alpha, std = self.coefficients(sde, t)
    if self.output == 'eps':
      return batch_broadcast(-1.0 / std, x) * output
    if self.output == 'score':
      return batch_broadcast(1.0 / std, x) * output if self.scale_by_sigma else output
    if self.output == 'v':  # eps = (std x + alpha v) / (alpha^2 + std^2)
      eps = (batch_broadcast(std, x) * x + batch_broadcast(alpha, x) * output) / batch_broadcast(
          alpha**2 + std**2, x)
      return batch_broadcast(-1.0 / std, x) * eps
    return (batch_broadcast(alpha, x) * output - x) / batch_broadcast(std**2, x)

  def split(self, output: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(the part of `output` that `output` names [B, ..., C], v [B, ..., C]) of a network
    with learned variances, whose output is [B, ..., 2C] for x [B, ..., C]."""
    if not self.learned_variance:
      raise ValueError('the network has no variance output: use learned_variance=True')
    if output.shape[:-1] != x.shape[:-1] or output.shape[-1] != 2 * x.shape[-1]:
      raise ValueError(f'a network with learned variances outputs [..., 2C] for x [..., C], '
                       f'got output {output.shape} for x {x.shape}')
    return output[..., :x.shape[-1]], output[..., x.shape[-1]:]

  def _net_output(self, net_fn: NetFn, sde: SDE, x: jax.Array, t: jax.Array) -> jax.Array:
    """The network's output at (x, t), less its v half if it has one."""
    output = net_fn(x, self.time_condition(sde, t))
    return self.split(output, x)[0] if self.learned_variance else output

  def score_fn(self, sde: SDE, net_fn: NetFn) -> ScoreFn:
    """score_fn(x [B, ...], t [B]) -> [B, ...] backed by the network function."""
    return lambda x, t: self.score(sde, self._net_output(net_fn, sde, x, t), x, t)

  def score_and_v_fn(self, sde: SDE, net_fn: NetFn) -> ScoreAndVFn:
    """score_and_v_fn(x, t) -> (score [B, ...], v [B, ...]) of a network with learned
    variances, from one call of the network."""
    if not self.learned_variance:
      raise ValueError('score_and_v_fn needs a network with learned variances '
                       '(learned_variance=True)')

    def score_and_v(x: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array]:
      output, v = self.split(net_fn(x, self.time_condition(sde, t)), x)
      return self.score(sde, output, x, t), v

    return score_and_v

  def denoise_fn(self, sde: SDE, net_fn: NetFn) -> ScoreFn:
    """denoise_fn(x, t) -> E[x(0) | x(t) = x] [B, ...], EDM's D, from the network function."""

    def denoise(x: jax.Array, t: jax.Array) -> jax.Array:
      output = self._net_output(net_fn, sde, x, t)
      if self.output == 'x0':
        return output
      alpha, std = self.coefficients(sde, t)
      score = self.score(sde, output, x, t)
      return (x + batch_broadcast(std**2, x) * score) / batch_broadcast(alpha, x)

    return denoise


def song_et_al(sde: SDE, *, continuous: bool, scale_by_sigma: bool) -> Parameterization:
  """The parameterisation of Song et al.'s score_sde networks for `sde`.

  VP and sub-VP networks predict the noise, seeing t * 999 in continuous time
  (always for sub-VP, which has no discrete levels) and DDPM's index otherwise.
  VE networks output the score (divided by sigma when `scale_by_sigma`), seeing
  sigma in continuous time and NCSN's level index otherwise.
  """
  if isinstance(sde, VPSDE):
    return Parameterization('eps', 't999' if continuous else 'ddpm_index')
  if isinstance(sde, SubVPSDE):
    return Parameterization('eps', 't999')
  if isinstance(sde, VESDE):
    return Parameterization('score', 'sigma' if continuous else 'ncsn_level',
                            scale_by_sigma=scale_by_sigma)
  raise ValueError(f'no published parameterisation for {type(sde).__name__}')
