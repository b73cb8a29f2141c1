"""GLIDE's text encoder (Nichol et al. 2021, glide-text2im `Text2ImUNet` and `xf.py`).

A transformer reads a caption's tokens; its token features are the context that the score
network's attention layers attend to, and the feature of the caption's last real token (the
end-of-text token, where GLIDE and CLIP pool) is added to the network's time embedding.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


class ResidualAttentionBlock(nn.Module):
  """A pre-LayerNorm transformer block: multi-head self-attention, then a GELU MLP.

  Attributes:
    heads: attention heads; they split the width.
    mlp_ratio: hidden width of the MLP over the block's width.
  """

  heads: int
  mlp_ratio: int

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:
    """Maps x [B, L, W] to [B, L, W]; only keys where mask [B, L] is True are attended to."""
    b, length, width = x.shape
    head_width = width // self.heads
    q, k, v = jnp.split(nn.Dense(3 * width, name='qkv')(nn.LayerNorm(name='ln_1')(x)), 3,
                        axis=-1)
    heads = lambda a: a.reshape(b, length, self.heads, head_width)
    logits = jnp.einsum('bqhc,bkhc->bhqk', heads(q), heads(k)) / np.sqrt(head_width)
    # A large negative logit rather than -inf: a row with no real token gets uniform
    # weights instead of NaNs.
    logits = jnp.where(mask[:, None, None, :], logits, jnp.finfo(logits.dtype).min)
    attended = jnp.einsum('bhqk,bkhc->bqhc', jax.nn.softmax(logits, axis=-1), heads(v))
    x = x + nn.Dense(width, name='attn_out')(attended.reshape(b, length, width))
    # Exact GELU, as GLIDE's transformer (torch.nn.GELU).
    h = nn.gelu(nn.Dense(self.mlp_ratio * width, name='mlp_in')(nn.LayerNorm(name='ln_2')(x)),
                approximate=False)
    return x + nn.Dense(width, name='mlp_out')(h)


class TextEncoder(nn.Module):
  """Token features and a pooled feature of captions.

  Token and learned position embeddings, `layers` pre-LayerNorm transformer blocks and a
  final LayerNorm, as GLIDE's (whose position embedding has std 0.01, as CLIP's). The
  attention is not causal and masks padding: every token attends only to the real tokens of
  its caption, so the features of a caption's real tokens, and its pooled feature, do not
  depend on how much padding follows it nor on the padding's token ids. The features at
  padding positions are unspecified (they attend to the real tokens too); the score
  network's attention gives them no weight through the same mask.

  Attributes:
    vocab_size: number of token ids.
    max_len: the most tokens a caption has (the number of position embeddings).
    width: feature width.
    layers: transformer blocks.
    heads: attention heads of each block; they split the width.
    mlp_ratio: hidden width of each block's MLP over the width.
  """

  vocab_size: int
  max_len: int
  width: int = 512
  layers: int = 16
  heads: int = 8
  mlp_ratio: int = 4

  @nn.compact
  def __call__(self, tokens: jax.Array, mask: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Reads tokens [B, L] (L <= max_len) whose real ones are where mask [B, L] is True.

    Args:
      tokens: int token ids, the caption first and padding after it.
      mask: bool, True on real tokens.

    Returns:
      (features [B, L, width], pooled [B, width]): the features of every position and the
      feature of each caption's last real token (the end-of-text token); a row with no real
      token pools position 0.
    """
    length = tokens.shape[1]
    if length > self.max_len:
      raise ValueError(f'{length} tokens exceed max_len={self.max_len}')
    if self.width % self.heads:
      raise ValueError(f'width={self.width} does not split into heads={self.heads}')
    mask = mask.astype(bool)
    x = nn.Embed(self.vocab_size, self.width, embedding_init=nn.initializers.normal(0.02),
                 name='token_embedding')(tokens)
    positions = self.param('positional_embedding', nn.initializers.normal(0.01),
                           (self.max_len, self.width))
    x = x + positions[:length].astype(x.dtype)
    for i in range(self.layers):
      x = ResidualAttentionBlock(self.heads, self.mlp_ratio, name=f'block_{i}')(x, mask)
    features = nn.LayerNorm(name='final_ln')(x)
    last = jnp.max(jnp.where(mask, jnp.arange(length), 0), axis=1)  # [B]; 0 with no real token
    pooled = jnp.take_along_axis(features, last[:, None, None], axis=1)[:, 0]
    return features, pooled
