"""The diffusion task: a score network trained on images, optionally conditioned on class
labels and on captions read by a jointly trained text encoder (GLIDE)."""

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

import models
import sde_lib
from sde_lib.parameterization import Parameterization

LossFn = Callable[..., jax.Array]
"""loss(rng, score_fn, images, weights=None) -> scalar: DSM, DDPM's or SMLD's loss; for a
network with learned variances loss(rng, score_and_v_fn, ...), improved DDPM's hybrid."""


class Caption(NamedTuple):
  """Captions read by the text encoder, what the score network is conditioned on.

  Attributes:
    features: [B, L, D] the tokens' features, which every attention layer attends to.
    mask: [B, L] True on real tokens (padding gets no attention).
    pooled: [B, D] the last real token's feature, added to the time embedding.
  """

  features: jax.Array
  mask: jax.Array
  pooled: jax.Array


@dataclasses.dataclass(frozen=True, eq=False)
class Diffusion:
  """A score network, its parameters the tree 'score' (and 'text' for its text encoder).

  With num_classes > 0 the network is class-conditional: batches carry 'label' [B], and
  in training a fraction label_dropout of them is replaced by the null class
  (num_classes), so that one network is also the unconditional model that
  classifier-free guidance needs. With a text encoder, batches carry the captions'
  'tokens' [B, L]; a fraction caption_dropout of them is replaced by the empty caption
  (GLIDE: 20%), the null condition of classifier-free guidance on text.

  Attributes:
    sde: the forward SDE.
    parameterization: what the network predicts and which time input it sees.
    model: the network.
    loss_fn: the training objective over a score function (LossFn); with learned variances
      over the network's (score, v) (losses.hybrid_loss).
    num_classes: the network's classes, 0 if unconditional.
    label_dropout: P(label -> null class) in training.
    text: the text encoder (models.TextEncoder), trained jointly by the diffusion loss;
      None for no captions.
    empty_caption: [L] the tokens of the empty caption (with text).
    pad_token: the padding token id (with text).
    caption_dropout: P(caption -> the empty caption) in training.
  """

  sde: sde_lib.SDE
  parameterization: Parameterization
  model: nn.Module
  loss_fn: LossFn
  num_classes: int = 0
  label_dropout: float = 0.0
  text: nn.Module | None = None
  empty_caption: np.ndarray | None = None
  pad_token: int = 0
  caption_dropout: float = 0.0

  name: ClassVar[str] = 'diffusion'
  samples: ClassVar[bool] = True
  frozen: ClassVar[tuple[str, ...]] = ()
  metrics: ClassVar[tuple[str, ...]] = ('loss', 'bpd_ode', 'bpd_vlb', 'fid')

  def __post_init__(self):
    if self.text is not None and (self.empty_caption is None
                                  or len(self.empty_caption) != self.text.max_len):
      raise ValueError('a text-conditional Diffusion needs the empty caption\'s tokens '
                       f'[text.max_len={self.text.max_len}]')

  @property
  def batch_keys(self) -> tuple[str, ...]:
    return (('image',) + (('label',) if self.num_classes else ())
            + (('tokens',) if self.text is not None else ()))

  def init(self, rng: jax.Array, image_shape: tuple[int, ...]) -> dict[str, Any]:
    return self._init(rng, image_shape, {})

  def _init(self, rng: jax.Array, image_shape: tuple[int, ...],
            image_inputs: dict[str, jax.Array]) -> dict[str, Any]:
    # The score network's key is the task's own: unconditional networks keep their
    # initialisation (and their golden losses, tests/run_lib/test_train.py).
    score_rng, text_rng = rng, jax.random.fold_in(rng, 1)
    # A conditional network makes its label embedding and text layers only when given them.
    conditioning = dict(image_inputs)
    if self.num_classes:
      conditioning['class_labels'] = jnp.zeros((1,), jnp.int32)
    trees = {}
    if self.text is not None:
      tokens = jnp.asarray(self.empty_caption)[None]
      trees['text'] = self.text.init(text_rng, tokens, tokens != self.pad_token)['params']
      conditioning.update(self._text_inputs(self.encode_text(trees, tokens)))
    variables = self.model.init(score_rng, jnp.zeros((1,) + tuple(image_shape)), jnp.ones((1,)),
                                **conditioning)
    return {'score': variables['params'], **trees}

  def sample_shape(self, image_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape [H, W, C] its samplers draw in for images of image_shape: theirs."""
    return tuple(image_shape)

  def input_shape(self, image_shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """The shape of the image each sample is drawn given (a super-resolution task's
    low-resolution image, `input_of` real images or a base stage's samples); None: drawn
    from noise alone."""
    del image_shape
    return None

  def to_images(self, params: dict, x: jax.Array) -> jax.Array:
    """Model-space images [B, H, W, C] of what its samplers drew: the samples themselves."""
    del params
    return x

  def encode_text(self, params: dict, tokens: jax.Array) -> Caption:
    """The text encoder's reading of captions' tokens [B, L]."""
    mask = tokens != self.pad_token
    features, pooled = self.text.apply({'params': params['text']}, tokens, mask)
    return Caption(features, mask, pooled)

  def null_caption(self, params: dict, batch: int) -> Caption:
    """The empty caption, read `batch` times: the unconditional model's condition."""
    tokens = jnp.broadcast_to(jnp.asarray(self.empty_caption), (batch, len(self.empty_caption)))
    return self.encode_text(params, tokens)

  @staticmethod
  def _text_inputs(caption: Caption) -> dict[str, jax.Array]:
    return {'context': caption.features, 'context_mask': caption.mask,
            'context_pooled': caption.pooled}

  def _net(self, params: dict, labels: jax.Array | None, caption: Caption | None,
           **net_options) -> Callable[[jax.Array, jax.Array], jax.Array]:
    if labels is not None and self.num_classes:
      net_options['class_labels'] = labels
    if self.text is None or caption is not None:
      text_inputs = {} if caption is None else self._text_inputs(caption)
      return models.net_fn(self.model, params['score'], **net_options, **text_inputs)

    def unconditional(x, time_cond):  # the empty caption's, read for the batch of x
      return self._net(params, labels, self.null_caption(params, x.shape[0]),
                       **net_options)(x, time_cond)

    return unconditional

  def score_fn(self, params: dict, labels: jax.Array | None = None,
               caption: Caption | None = None, **net_options) -> sde_lib.ScoreFn:
    """The network's score function; a class-conditional network's of `labels` [B], a
    text-conditional one's of a `caption` (each ignored by a network without it). A
    text-conditional network given no caption is the unconditional model, the empty
    caption's."""
    return self.parameterization.score_fn(self.sde,
                                          self._net(params, labels, caption, **net_options))

  def image_inputs(self, batch: dict,
                   size: tuple[int, int] | None = None) -> dict[str, jax.Array]:
    """The network inputs that come with each image of size (H, W) (none here; a
    super-resolution task's low-resolution image), from a batch of `conditions`."""
    del batch, size
    return {}

  def _conditional_net(self, params: dict, batch: dict, **net_options):
    labels = batch['label'] if self.num_classes else None
    caption = self.encode_text(params, batch['tokens']) if self.text is not None else None
    return self._net(params, labels, caption, **self.image_inputs(batch), **net_options)

  def conditional_score_fn(self, params: dict, batch: dict, **net_options) -> sde_lib.ScoreFn:
    """The score under the batch's own conditions: its labels and captions (if the task
    has them) and image inputs, what the test loss and the likelihood of p(x | condition)
    use. `batch` is one of `conditions`."""
    return self.parameterization.score_fn(self.sde,
                                          self._conditional_net(params, batch, **net_options))

  def reverse_kernel(self, params: dict, batch: dict, *, variance: str,
                     clip_denoised: tuple[float, float] | None) -> sde_lib.vlb.Kernel:
    """The reverse step p(x_{n-1} | x_n) of DDPM's chain under the batch's conditions, what
    the variational bound scores: with the network's learned variances, or a fixed
    `variance` ('beta_tilde' or 'beta')."""
    net = self._conditional_net(params, batch)
    # A continuous-time network is asked at the times of the levels' log-SNRs.
    discrete = self.parameterization.discrete
    if self.parameterization.learned_variance:
      return sde_lib.vlb.learned_range_kernel(
          self.sde, self.parameterization.score_and_v_fn(self.sde, net),
          clip_denoised=clip_denoised, discrete=discrete)
    return sde_lib.vlb.fixed_kernel(self.sde, self.parameterization.score_fn(self.sde, net),
                                    variance=variance, clip_denoised=clip_denoised,
                                    discrete=discrete)

  def conditions(self, rng: jax.Array, batch: dict, *, train: bool) -> dict:
    """The batch a loss sees: in training with a fraction of its labels and captions
    dropped to the null ones (classifier-free guidance)."""
    if not train:
      return batch
    batch = dict(batch)
    if self.num_classes:
      batch['label'] = sde_lib.conditioning.drop_labels(
          jax.random.fold_in(rng, 1), batch['label'], num_classes=self.num_classes,
          rate=self.label_dropout)
    if self.text is not None:
      batch['tokens'] = sde_lib.conditioning.drop(
          jax.random.fold_in(rng, 2), batch['tokens'], jnp.asarray(self.empty_caption),
          rate=self.caption_dropout)
    return batch

  def denoise_fn(self, params: dict) -> sde_lib.ScoreFn:
    """The unconditional network's prediction of x(0): denoise_fn(x, t)."""
    return self.parameterization.denoise_fn(self.sde, self._net(params, None, None))

  def loss_terms(self, params: dict, batch: dict, rng: jax.Array, *, train: bool,
                 weights: jax.Array | None = None,
                 step: jax.Array | None = None) -> dict[str, jax.Array]:
    """{'loss': the objective}: one term."""
    return {'loss': self.loss(params, batch, rng, train=train, weights=weights, step=step)}

  def loss(self, params: dict, batch: dict, rng: jax.Array, *, train: bool,
           weights: jax.Array | None = None, step: jax.Array | None = None) -> jax.Array:
    del step  # the objective does not change over training
    batch = self.conditions(rng, batch, train=train)
    # A network with learned variances trains on its score and v (the hybrid loss).
    model_fn = (self.parameterization.score_and_v_fn if self.parameterization.learned_variance
                else self.parameterization.score_fn)
    if not train:
      return self.loss_fn(rng, model_fn(self.sde, self._conditional_net(params, batch)),
                          batch['image'], weights=weights)
    dropout_rng, loss_rng = jax.random.split(rng)
    net = self._conditional_net(params, batch, train=True, rng=dropout_rng)
    return self.loss_fn(loss_rng, model_fn(self.sde, net), batch['image'], weights=weights)
