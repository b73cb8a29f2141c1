"""The diffusion task: a score network trained on (optionally labelled) images."""

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

import models
import sde_lib
from sde_lib.parameterization import Parameterization

LossFn = Callable[..., jax.Array]
"""loss(rng, score_fn, images, weights=None) -> scalar: DSM, DDPM's or SMLD's loss."""


@dataclasses.dataclass(frozen=True, eq=False)
class Diffusion:
  """A score network, its parameters the tree 'score'.

  With num_classes > 0 the network is class-conditional: batches carry 'label' [B], and
  in training a fraction label_dropout of them is replaced by the null class
  (num_classes), so that one network is also the unconditional model that
  classifier-free guidance needs.

  Attributes:
    sde: the forward SDE.
    parameterization: what the network predicts and which time input it sees.
    model: the network.
    loss_fn: the training objective over a score function (LossFn).
    num_classes: the network's classes, 0 if unconditional.
    label_dropout: P(label -> null class) in training.
  """

  sde: sde_lib.SDE
  parameterization: Parameterization
  model: nn.Module
  loss_fn: LossFn
  num_classes: int = 0
  label_dropout: float = 0.0

  name: ClassVar[str] = 'diffusion'
  samples: ClassVar[bool] = True

  @property
  def batch_keys(self) -> tuple[str, ...]:
    return ('image', 'label') if self.num_classes else ('image',)

  def init(self, rng: jax.Array, image_shape: tuple[int, ...]) -> dict[str, Any]:
    # A class-conditional network makes its label embedding only when given labels.
    labels = {'class_labels': jnp.zeros((1,), jnp.int32)} if self.num_classes else {}
    variables = self.model.init(rng, jnp.zeros((1,) + tuple(image_shape)), jnp.ones((1,)),
                                **labels)
    return {'score': variables['params']}

  def score_fn(self, params: dict, labels: jax.Array | None = None,
               **net_options) -> sde_lib.ScoreFn:
    """The network's score function; a class-conditional network's of `labels` [B]
    (ignored by an unconditional one)."""
    if labels is not None and self.num_classes:
      net_options['class_labels'] = labels
    return self.parameterization.score_fn(
        self.sde, models.net_fn(self.model, params['score'], **net_options))

  def denoise_fn(self, params: dict) -> sde_lib.ScoreFn:
    """The unconditional network's prediction of x(0): denoise_fn(x, t)."""
    return self.parameterization.denoise_fn(self.sde,
                                            models.net_fn(self.model, params['score']))

  def loss(self, params: dict, batch: dict, rng: jax.Array, *, train: bool,
           weights: jax.Array | None = None) -> jax.Array:
    labels = batch['label'] if self.num_classes else None
    if not train:
      return self.loss_fn(rng, self.score_fn(params, labels), batch['image'], weights=weights)
    dropout_rng, loss_rng = jax.random.split(rng)
    if self.num_classes:
      labels = sde_lib.conditioning.drop_labels(jax.random.fold_in(rng, 1), labels,
                                                num_classes=self.num_classes,
                                                rate=self.label_dropout)
    return self.loss_fn(loss_rng, self.score_fn(params, labels, train=True, rng=dropout_rng),
                        batch['image'], weights=weights)
