"""The classifier task: a noise-conditional classifier p(y | x_t, t) for classifier guidance."""

import dataclasses
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

import models
import sde_lib
from sde_lib.parameterization import Parameterization


@dataclasses.dataclass(frozen=True, eq=False)
class NoisyClassifier:
  """A classifier of images diffused by `sde` to a time t drawn as the score model's (ADM,
  Dhariwal & Nichol 2021), its parameters the tree 'classifier'.

  Attributes:
    sde: the forward SDE the score model it guides was trained on.
    parameterization: its time input (the same as the score network's).
    model: the network, [B, ...] images and time inputs -> [B, num_outputs] logits.
  """

  sde: sde_lib.SDE
  parameterization: Parameterization
  model: nn.Module

  name: ClassVar[str] = 'classifier'
  samples: ClassVar[bool] = False
  frozen: ClassVar[tuple[str, ...]] = ()
  batch_keys: ClassVar[tuple[str, ...]] = ('image', 'label')
  metrics: ClassVar[tuple[str, ...]] = ('loss', 'accuracy')
  # What to do with its workdir instead of sampling it.
  use_instead: ClassVar[str] = ('guide a score model by it with --config.sampling.guidance='
                                'classifier --config.sampling.classifier_workdir={workdir}')

  @property
  def num_outputs(self) -> int:
    return self.model.num_outputs

  def init(self, rng: jax.Array, image_shape: tuple[int, ...]) -> dict[str, Any]:
    variables = self.model.init(rng, jnp.zeros((1,) + tuple(image_shape)), jnp.ones((1,)))
    return {'classifier': variables['params']}

  def logits_fn(self, params: dict, **net_options) -> sde_lib.losses.LogitsFn:
    """logits_fn(x_t, t) -> [B, num_outputs]."""
    net = models.net_fn(self.model, params['classifier'], **net_options)
    return lambda x, t: net(x, self.parameterization.time_condition(self.sde, t))

  def log_prob_fn(self, params: dict, labels: jax.Array) -> sde_lib.guidance.LogProbFn:
    """log p(labels | x_t, t), what classifier guidance differentiates."""
    logits_fn = self.logits_fn(params)
    return lambda x, t: jnp.take_along_axis(jax.nn.log_softmax(logits_fn(x, t)),
                                            labels[:, None], axis=-1)[:, 0]

  def loss_terms(self, params: dict, batch: dict, rng: jax.Array, *, train: bool,
                 weights: jax.Array | None = None,
                 step: jax.Array | None = None) -> dict[str, jax.Array]:
    """{'loss': the objective}: one term."""
    return {'loss': self.loss(params, batch, rng, train=train, weights=weights, step=step)}

  def loss(self, params: dict, batch: dict, rng: jax.Array, *, train: bool,
           weights: jax.Array | None = None, step: jax.Array | None = None) -> jax.Array:
    del step  # the objective does not change over training
    if not train:
      return sde_lib.losses.classifier_loss(rng, self.logits_fn(params), batch['image'],
                                            batch['label'], sde=self.sde, weights=weights)
    dropout_rng, loss_rng = jax.random.split(rng)
    return sde_lib.losses.classifier_loss(loss_rng,
                                          self.logits_fn(params, train=True, rng=dropout_rng),
                                          batch['image'], batch['label'], sde=self.sde,
                                          weights=weights)
