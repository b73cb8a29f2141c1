"""Guidance as score transforms: ScoreFn in, ScoreFn out.

A guided score is an ordinary `ScoreFn`, so every sampler of `sampling.SAMPLERS`, the
probability-flow likelihood and the denoiser take it unchanged; nothing here copies a
sampling loop.

Convention for `scale` (s): the guided score is

  score_uncond + s * (score_cond - score_uncond)  =  score_uncond + s * grad log p(y | x_t)

so s = 1 is the plain conditional model, s = 0 the unconditional one, and s > 1
sharpens towards the condition. Ho & Salimans (2021) write the same score as
(1 + w) score_cond - w score_uncond: their w is s - 1. Dhariwal & Nichol's classifier
scale is s of `classifier`. With an exact classifier both transforms give the same
score (tests/sde_lib/test_guidance.py checks it on a mixture with exact posteriors).
"""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from sde_lib.sde import ScoreFn

CondScoreFn = Callable[[jax.Array, jax.Array, Any], jax.Array]
"""cond_score(x [B, ...], t [B], cond) -> [B, ...]; cond a pytree of [B, ...] leaves."""

LogProbFn = Callable[[jax.Array, jax.Array], jax.Array]
"""log_prob(x [B, ...], t [B]) -> log p(y | x_t, t) [B], the targets y bound in."""


def _per_example(mask: jax.Array, x: jax.Array) -> jax.Array:
  return mask.reshape((-1,) + (1,) * (x.ndim - 1))


def classifier_free(cond_score: CondScoreFn, cond: Any, null: Any, *, scale: float,
                    interval: tuple[float, float] | None = None) -> ScoreFn:
  """Classifier-free guidance (Ho & Salimans 2021) of a model trained with dropped
  conditions.

  The conditional and unconditional scores come from one batched call on [x; x] with
  conditions [cond; null], so a guided step costs one (twice as wide) network call and
  counts as one evaluation in a sampler's `nfe`.

  Args:
    cond_score: the network's score under a condition (labels, captions, ...).
    cond: the condition of each example, a pytree of [B, ...] leaves.
    null: the null condition in the same structure and shapes (the null class, the
      empty caption).
    scale: s; see the module docstring (s = 1: no guidance).
    interval: (t_lo, t_hi): guide only for t in [t_lo, t_hi], and use the conditional
      score (s = 1) elsewhere. Kynkäänniemi et al. (2024) find guidance harmful at high
      noise and useless at low noise; None guides at every t.

  Returns:
    The guided score_fn(x, t).
  """

  def score(x: jax.Array, t: jax.Array) -> jax.Array:
    b = x.shape[0]
    both = jax.tree.map(lambda c, n: jnp.concatenate([c, n]), cond, null)
    scores = cond_score(jnp.concatenate([x, x]), jnp.concatenate([t, t]), both)
    conditional, unconditional = scores[:b], scores[b:]
    guided = unconditional + scale * (conditional - unconditional)
    if interval is None:
      return guided
    inside = (t >= interval[0]) & (t <= interval[1])
    return jnp.where(_per_example(inside, x), guided, conditional)

  return score


def classifier(score_fn: ScoreFn, log_prob_fn: LogProbFn, *, scale: float) -> ScoreFn:
  """Classifier guidance (Song et al. 2021, Sec. 5; Dhariwal & Nichol 2021):
  score_fn + scale * grad_x log p(y | x_t, t).

  Args:
    score_fn: the unconditional score.
    log_prob_fn: a noise-conditional classifier's log-probability of the wanted class of
      each example at x_t; examples must not interact (the gradient of the batch sum is
      then each example's own).
    scale: s (s = 1: the exact conditional score if the classifier is exact).
  """
  if scale == 0:  # the unguided score, without differentiating the classifier at every step
    return score_fn

  def score(x: jax.Array, t: jax.Array) -> jax.Array:
    grad = jax.grad(lambda x: jnp.sum(log_prob_fn(x, t)))(x)
    return score_fn(x, t) + scale * grad.astype(x.dtype)

  return score
