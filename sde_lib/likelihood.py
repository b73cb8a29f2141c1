"""Exact likelihoods through the probability-flow ODE (Song et al. 2021, App. D.2).

log p_eps(x) = log p_T(x(T)) + int_eps^T div f(x(t), t) dt, where f is the
probability-flow drift; the divergence is estimated with Hutchinson-Skilling
(Rademacher or Gaussian probes) or, for small dimensions, computed exactly.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np

from data import scaling
from sde_lib.ode import solve_ode
from sde_lib.sde import SDE, ScoreFn, reverse
from sde_lib.utils import check_levels, normal, rademacher, uniform

ESTIMATORS = ('rademacher', 'gaussian', 'exact')


def _per_example_sum(v: jax.Array) -> jax.Array:
  return jnp.sum(v.reshape(v.shape[0], -1), axis=-1)


def _drift_and_divergence(drift_fn, x: jax.Array, probe: jax.Array | None):
  """drift_fn(x) [B, ...] and its divergence [B]; exact when probe is None.

  Examples must not interact inside drift_fn: the Jacobian is taken as block
  diagonal over the batch.
  """
  if probe is not None:
    drift, jvp = jax.jvp(drift_fn, (x,), (probe,))
    return drift, _per_example_sum(probe * jvp)
  dim = math.prod(x.shape[1:])
  basis = jnp.eye(dim, dtype=x.dtype).reshape((dim, 1) + x.shape[1:])
  drift, columns = jax.vmap(
      lambda e: jax.jvp(drift_fn, (x,), (jnp.broadcast_to(e, x.shape),)),
      out_axes=(None, 0))(basis)  # columns [D, B, ...]: J e_d
  diagonal = jnp.diagonal(columns.reshape(dim, x.shape[0], dim), axis1=0, axis2=2)
  return drift, jnp.sum(diagonal, axis=-1)


def bits_per_dim(rng: jax.Array, sde: SDE, score_fn: ScoreFn, x: jax.Array, *,
                 estimator: str = 'rademacher', rtol: float = 1e-5, atol: float = 1e-5,
                 method: str = 'dopri5', eps: float = 1e-5, levels: int | None = None,
                 centered: bool = True, n_steps: int = 100, max_steps: int = 4096):
  """Bits per dimension of x under the model defined by `score_fn`.

  With `levels=None`, x is continuous data in model space and the result is
  -log2 p_eps(x) / D. With `levels=L` (256 for 8-bit images), x holds the integer
  grey levels k in [0, L - 1]; they are uniformly dequantised, (x + u) / L with
  u ~ U[0, 1), mapped to [-1, 1] (`centered`) or [0, 1], and the density is reported
  on the [0, L)^D cube: this adds log2(L) - 1 (or log2(L)) bits/dim. Its expectation
  over u upper-bounds the discrete negative log-likelihood, which is never negative;
  the density at the grid points themselves is not a likelihood of discrete data and
  can give negative bits/dim. (`vlb.bits_per_dim`, DDPM's bound, takes the same
  `levels` and `centered` but its x in model space.)

  Args:
    rng: PRNG key (probe and dequantisation noise).
    sde: the forward SDE.
    score_fn: score_fn(x [B, ...], t [B]) -> [B, ...].
    x: data [B, ...].
    estimator: 'rademacher' or 'gaussian' (Hutchinson-Skilling, one probe per
      example held fixed along the trajectory) or 'exact' (D Jacobian-vector
      products per evaluation; small D only).
    rtol, atol, method, n_steps, max_steps: ODE solver settings as in
      `ode.solve_ode`.
    eps: starting time of the ODE, in (0, T).
    levels: the number of grey levels of discrete data (an integer >= 2), or None for
      continuous data.
    centered: whether model space is [-1, 1] rather than [0, 1] (with levels).

  Returns:
    (bits/dim [B], the latent x(T) [B, ...], number of ODE right-hand-side
    evaluations, each one score evaluation plus a Jacobian-vector product).
  """
  if estimator not in ESTIMATORS:
    raise ValueError(f'unknown estimator {estimator!r}; known: {sorted(ESTIMATORS)}')
  if not 0 < eps < sde.T:
    raise ValueError(f'eps must lie in (0, T={sde.T}), got {eps!r}')
  probe_rng, dequant_rng = jax.random.split(rng)
  x = jnp.asarray(x, jnp.result_type(float))
  dim = math.prod(x.shape[1:])
  offset = 0.0
  if levels is not None:
    check_levels('levels', levels)
    # [0, 1] -> [-1, 1] (centered) halves the density: one bit/dim less.
    x = scaling.from_unit((x + uniform(dequant_rng, x.shape, x.dtype)) / levels,
                          centered=centered)
    offset = float(np.log2(levels)) - int(centered)

  probe = {'rademacher': rademacher, 'gaussian': normal}.get(estimator)
  probe = None if probe is None else probe(probe_rng, x.shape, x.dtype)
  rsde = reverse(sde, score_fn, probability_flow=True)

  def vector_field(t, state):
    y, _ = state
    return _drift_and_divergence(
        lambda v: rsde.sde(v, jnp.full((y.shape[0],), t, y.dtype))[0], y, probe)

  (z, delta_logp), nfe = solve_ode(
      vector_field, (x, jnp.zeros(x.shape[0], x.dtype)), eps, sde.T, method=method,
      rtol=rtol, atol=atol, n_steps=n_steps, max_steps=max_steps)
  logp = sde.prior_logp(z) + delta_logp
  return -logp / (dim * np.log(2.0)) + offset, z, nfe
