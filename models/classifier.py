"""A noise-conditional classifier for classifier guidance: the encoder half of NCSN++ /
DDPM++ with the same time embedding, then pooling and a linear head, as ADM's classifier
(Dhariwal & Nichol 2021, `EncoderUNetModel`).

It sees x_t and the same time input as the score network of its SDE, and returns logits
of p(y | x_t, t); `sde_lib.guidance.classifier` adds the gradient of their log-softmax to
the score.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from models import layers
from models.layers import default_init, group_norm
from models.ncsnpp import ACTIVATIONS, NCSNpp, check_choice

POOLING = ('attention', 'mean')


class AttentionPool(nn.Module):
  """ADM's AttentionPool2d: the mean token, with learned positions, attends over the
  feature map's tokens, and its output is projected to `features`."""

  features: int
  num_heads: int = 1

  @nn.compact
  def __call__(self, h: jax.Array) -> jax.Array:
    b, height, width, c = h.shape
    if c % self.num_heads:
      raise ValueError(f'{c} channels do not split into {self.num_heads} heads')
    tokens = h.reshape(b, height * width, c)
    tokens = jnp.concatenate([tokens.mean(axis=1, keepdims=True), tokens], axis=1)
    positions = self.param('positional_embedding', nn.initializers.normal(c**-0.5),
                           (height * width + 1, c))
    tokens = tokens + positions.astype(tokens.dtype)
    q, k, v = jnp.split(nn.Dense(3 * c, kernel_init=default_init(), name='qkv')(tokens), 3,
                        axis=-1)
    out = layers.attention(q[:, :1], k, v, heads=self.num_heads)  # [B, 1, C]
    return nn.Dense(self.features, kernel_init=default_init(), name='head')(out.reshape(b, c))


class Classifier(NCSNpp):
  """Logits [B, num_outputs] of x [B, H, W, C] at time_cond [B].

  Every NCSNpp option shapes the encoder (nf, ch_mult, num_res_blocks, attn_resolutions,
  resblock_type, fir, embedding_type, ...); the decoder is not built.

  Attributes:
    num_outputs: the number of classes.
    pooling: 'attention' (ADM's default) or 'mean' (GroupNorm, activation, global mean).
    num_heads: heads of the attention pooling.
  """

  num_outputs: int = 10
  pooling: str = 'attention'
  num_heads: int = 1

  @nn.compact
  def __call__(self, x: jax.Array, time_cond: jax.Array, *, train: bool = False,
               cond: jax.Array | None = None, context: jax.Array | None = None,
               context_mask: jax.Array | None = None, context_pooled: jax.Array | None = None,
               aug_cond: jax.Array | None = None) -> jax.Array:
    """Logits of x at time_cond; the optional inputs are NCSNpp's (models.ncsnpp)."""
    check_choice('pooling', self.pooling, POOLING)
    h, _, _ = self.encode(x, time_cond, train=train, class_labels=None, cond=cond,
                          context=context, context_mask=context_mask,
                          context_pooled=context_pooled, aug_cond=aug_cond)
    h = ACTIVATIONS[self.nonlinearity](group_norm(h.shape[-1])(h))
    if self.pooling == 'attention':
      return AttentionPool(self.num_outputs, self.num_heads)(h)
    return nn.Dense(self.num_outputs, kernel_init=default_init(), name='head')(h.mean((1, 2)))
