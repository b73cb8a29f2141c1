"""UniPC (Zhao et al. 2023): a unified predictor (UniP) and corrector (UniC), B(h) = e^h - 1.

Data-prediction form ("bh2", the variant for guided and unconditional sampling
alike), orders 1-3. After each step the model output at the new point, which the
next step needs anyway, also corrects that point (UniC raises the order by one at
no extra cost); the last step is not corrected. The coefficients solve the
order conditions of the paper's Algorithm 2 exactly as diffusers and the authors'
code do: with r_k = (lambda_{-k} - lambda) / h and D_k = (x0_{-k} - x0) / r_k,
R[j, k] = r_k^j and b[j] = j! phi_{j+1}(h) h / B(h).
"""

import math

import jax
import jax.numpy as jnp

from sde_lib.sampling.core import (Frames, Replace, SampleOutput, check_choice, check_grid,
                                   coefficients, denoise, int32, replacer)
from sde_lib.sampling.dpm_solver import check_order, step_orders
from sde_lib.sde import SDE, ScoreFn


def _b_of_h(h: jax.Array, variant: str) -> jax.Array:
  """B(h) in the data-prediction variables (hh = -h): e^hh - 1 (bh2) or hh (bh1)."""
  return jnp.expm1(-h) if variant == 'bh2' else -h


def _b(h: jax.Array, order: int, variant: str) -> jax.Array:
  """b[j], j < order: j! h phi_{j+1}(h) / B(h) in the data-prediction variables (hh = -h)."""
  hh = -h
  h_phi_1 = jnp.expm1(hh)
  h_phi_k = h_phi_1 / hh - 1.0
  b = []
  for j in range(1, order + 1):
    b.append(h_phi_k * math.factorial(j) / _b_of_h(h, variant))
    h_phi_k = h_phi_k / hh - 1.0 / math.factorial(j + 1)
  return jnp.stack(b)


def _update(x, x0, alpha_s, ratio, h, history, rks, order: int, variant: str, new=None):
  """One UniP (new is None) or UniC (new = x0 at the new point) update of that order.

  history: the denoised states of the earlier points, newest first; rks: their r_k.
  """
  h_phi_1 = jnp.expm1(-h)
  b_h = _b_of_h(h, variant)
  base = ratio * x - alpha_s * h_phi_1 * x0
  d = [(history[k] - x0) / rks[k] for k in range(order - 1)]
  if new is None:  # predictor: uses order - 1 earlier points
    if order == 1:
      return base
    if order == 2:
      rhos = jnp.array([0.5])
    else:
      rows = jnp.stack([jnp.ones(2), jnp.stack(rks[:2])])
      rhos = jnp.linalg.solve(rows, _b(h, order, variant)[:2])
    return base - alpha_s * b_h * sum(rhos[k] * d[k] for k in range(order - 1))
  # corrector: the order - 1 earlier points and the new one (r = 1)
  if order == 1:
    rhos = jnp.array([0.5])
  else:
    r = jnp.stack(list(rks[:order - 1]) + [jnp.ones(())])
    rows = jnp.stack([r**j for j in range(order)])
    rhos = jnp.linalg.solve(rows, _b(h, order, variant))
  correction = sum(rhos[k] * d[k] for k in range(order - 1)) + rhos[-1] * (new - x0)
  return base - alpha_s * b_h * correction


def unipc_sample(rng: jax.Array, sde: SDE, score_fn: ScoreFn, x_T: jax.Array, *,
                 ts: jax.Array, order: int = 3, lower_order_final: bool = True,
                 variant: str = 'bh2', n_frames: int = 0,
                 replace: Replace | None = None) -> SampleOutput:
  """UniPC-p (bh2, data prediction) along the grid ts; one evaluation per step.

  Args:
    rng: the key of the `replace` hook's draws (the sampler itself is deterministic).
    sde: the forward SDE.
    score_fn: score_fn(x [B, ...], t [B]) -> [B, ...].
    x_T: [B, ...] the starting point, a draw from the prior.
    ts: [n_steps + 1] decreasing times (see `schedules`).
    order: the predictor's order, 1, 2 or 3 (the corrected points have one more).
    lower_order_final: drop the order at the last steps, as diffusers and the
      authors do.
    variant: 'bh2' (B(h) = e^h - 1) or 'bh1' (B(h) = h), the paper's two choices.
    n_frames: if >= 2, also return a `Trajectory` of that many states.
    replace: a per-step hook (`core.Replace`), applied after every predictor step and
      to the corrected point, with the same draw at the same point.

  Returns:
    A `SampleOutput`.
  """
  check_order(order)
  check_choice('variant', variant, ('bh1', 'bh2'))
  ts, n = check_grid(ts, x_T)
  grid = coefficients(sde, ts)
  lam = grid.log_snr
  recorder = Frames.make(n, n_frames)
  at = replacer(rng, replace)

  def coefficients_of(i):
    """(alpha, std ratio, h, r_k for k = 1, 2) of the step from point i to i + 1."""
    h = lam[i + 1] - lam[i]
    ratio = jnp.where(grid.std[i + 1] > 0, grid.std[i + 1] / grid.std[i], 0.0)
    # Earlier points clamped to the first: finite where unused, for finite gradients.
    return grid.alpha[i + 1], ratio, h, [(lam[jnp.maximum(i - k, 0)] - lam[i]) / h
                                         for k in (1, 2)]

  def branches(x, x0, i, history, new=None):
    alpha_s, ratio, h, rks = coefficients_of(i)
    return [lambda p=p: _update(x, x0, alpha_s, ratio, h, history, rks, p, variant, new)
            for p in range(1, order + 1)]

  def body(i, carry):
    x, x_prev, history, p_prev, frames = carry  # history: x0 at points i-1, i-2, i-3
    x0 = denoise(sde, score_fn, x, ts[i])
    # UniC: correct point i, reached from i - 1 by a step of order p_prev.
    corrected = jax.lax.switch(
        p_prev - 1, branches(x_prev, history[0], jnp.maximum(i - 1, 0), history[1:], x0))
    x = jnp.where(i > 0, at(i, corrected, ts[i]), x)
    frames = recorder.record(frames, i, x)
    history = [x0] + history[:2]
    p = jnp.where(grid.std[i + 1] > 0, step_orders(i, n, order, lower_order_final), 1)
    p = p.astype(jnp.int32)
    x_next = jax.lax.switch(p - 1, branches(x, x0, i, history[1:]))
    return at(i + 1, x_next, ts[i + 1]), x, history, p, frames

  x = at(0, jnp.asarray(x_T), ts[0])
  carry = (x, x, [x, x, x], jnp.ones((), jnp.int32), recorder.init(x))
  x, *_, frames = jax.lax.fori_loop(0, n, body, carry)
  return SampleOutput(x, int32(n), recorder.trajectory(frames, ts, x))
