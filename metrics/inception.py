"""Inception-v3, FID variant (TensorFlow's 2015-12-05 graph as ported by pytorch-fid's
fid_inception_v3), NHWC: the 2048-d pool3 features and the 1008 logits of FID, KID and IS.

Inception weights cannot be downloaded at run time. They live in an .npz file whose keys
are the Flax variable paths joined by '/', e.g. `params/Mixed_5b/branch1x1/conv/kernel`
(HWIO) and `batch_stats/Mixed_5b/branch1x1/bn/mean`. Convert pytorch-fid's weights once,
on a machine with torch:

  import torch
  from metrics import inception
  # The file at inception.PYTORCH_FID_WEIGHTS_URL; or, with pytorch-fid installed,
  # state_dict = pytorch_fid.inception.fid_inception_v3().state_dict().
  state_dict = torch.load('pt_inception-2015-12-05-6726825d.pth', map_location='cpu')
  variables = inception.convert_pytorch_fid_state_dict(
      {name: value.numpy() for name, value in state_dict.items()})
  inception.save_inception_params(variables, 'inception_fid.npz')

then `variables = load_inception_params('inception_fid.npz')` and
`features, logits = inception_features(variables, images)` for images in [-1, 1].
"""

import functools
import os
import zipfile
from collections.abc import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util
from jax.typing import ArrayLike

from metrics.statistics import EvaluationError

Variables = dict[str, dict]

# Metric values must not depend on an accelerator's reduced-precision float32 default (TF32).
PRECISION = jax.lax.Precision.HIGHEST


INCEPTION_CLASSES = 1008
PYTORCH_FID_WEIGHTS = 'pt_inception-2015-12-05-6726825d.pth'
PYTORCH_FID_WEIGHTS_URL = ('https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/'
                           + PYTORCH_FID_WEIGHTS)


class BasicConv2d(nn.Module):
  """Convolution without bias, BatchNorm (eps 1e-3, running statistics), ReLU."""

  features: int
  kernel_size: tuple[int, int]
  strides: int = 1
  padding: tuple[int, int] = (0, 0)  # (rows, columns) on both sides, as torch's Conv2d

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    pad_h, pad_w = self.padding
    x = nn.Conv(self.features, self.kernel_size, strides=self.strides,
                padding=((pad_h, pad_h), (pad_w, pad_w)), use_bias=False, precision=PRECISION,
                name='conv')(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name='bn')(x)
    return nn.relu(x)


def _avg_pool_3x3(x: jax.Array) -> jax.Array:
  # TensorFlow's average pool leaves the zero padding out of the count (pytorch-fid's patch).
  return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_3x3(x: jax.Array, stride: int) -> jax.Array:
  padding = 'VALID' if stride == 2 else ((1, 1), (1, 1))
  return nn.max_pool(x, (3, 3), strides=(stride, stride), padding=padding)


class InceptionA(nn.Module):
  """Mixed_5b/c/d: 1x1, 5x5, double 3x3 and pooled branches."""

  pool_features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    branch1x1 = BasicConv2d(64, (1, 1), name='branch1x1')(x)
    branch5x5 = BasicConv2d(48, (1, 1), name='branch5x5_1')(x)
    branch5x5 = BasicConv2d(64, (5, 5), padding=(2, 2), name='branch5x5_2')(branch5x5)
    branch3x3dbl = BasicConv2d(64, (1, 1), name='branch3x3dbl_1')(x)
    branch3x3dbl = BasicConv2d(96, (3, 3), padding=(1, 1), name='branch3x3dbl_2')(branch3x3dbl)
    branch3x3dbl = BasicConv2d(96, (3, 3), padding=(1, 1), name='branch3x3dbl_3')(branch3x3dbl)
    branch_pool = BasicConv2d(self.pool_features, (1, 1), name='branch_pool')(_avg_pool_3x3(x))
    return jnp.concatenate([branch1x1, branch5x5, branch3x3dbl, branch_pool], axis=-1)


class InceptionB(nn.Module):
  """Mixed_6a: grid reduction 35 -> 17."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    branch3x3 = BasicConv2d(384, (3, 3), strides=2, name='branch3x3')(x)
    branch3x3dbl = BasicConv2d(64, (1, 1), name='branch3x3dbl_1')(x)
    branch3x3dbl = BasicConv2d(96, (3, 3), padding=(1, 1), name='branch3x3dbl_2')(branch3x3dbl)
    branch3x3dbl = BasicConv2d(96, (3, 3), strides=2, name='branch3x3dbl_3')(branch3x3dbl)
    return jnp.concatenate([branch3x3, branch3x3dbl, _max_pool_3x3(x, 2)], axis=-1)


class InceptionC(nn.Module):
  """Mixed_6b/c/d/e: factorised 7x7 branches."""

  channels_7x7: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c7 = self.channels_7x7
    branch1x1 = BasicConv2d(192, (1, 1), name='branch1x1')(x)
    branch7x7 = BasicConv2d(c7, (1, 1), name='branch7x7_1')(x)
    branch7x7 = BasicConv2d(c7, (1, 7), padding=(0, 3), name='branch7x7_2')(branch7x7)
    branch7x7 = BasicConv2d(192, (7, 1), padding=(3, 0), name='branch7x7_3')(branch7x7)
    dbl = BasicConv2d(c7, (1, 1), name='branch7x7dbl_1')(x)
    dbl = BasicConv2d(c7, (7, 1), padding=(3, 0), name='branch7x7dbl_2')(dbl)
    dbl = BasicConv2d(c7, (1, 7), padding=(0, 3), name='branch7x7dbl_3')(dbl)
    dbl = BasicConv2d(c7, (7, 1), padding=(3, 0), name='branch7x7dbl_4')(dbl)
    dbl = BasicConv2d(192, (1, 7), padding=(0, 3), name='branch7x7dbl_5')(dbl)
    branch_pool = BasicConv2d(192, (1, 1), name='branch_pool')(_avg_pool_3x3(x))
    return jnp.concatenate([branch1x1, branch7x7, dbl, branch_pool], axis=-1)


class InceptionD(nn.Module):
  """Mixed_7a: grid reduction 17 -> 8."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    branch3x3 = BasicConv2d(192, (1, 1), name='branch3x3_1')(x)
    branch3x3 = BasicConv2d(320, (3, 3), strides=2, name='branch3x3_2')(branch3x3)
    branch7x7x3 = BasicConv2d(192, (1, 1), name='branch7x7x3_1')(x)
    branch7x7x3 = BasicConv2d(192, (1, 7), padding=(0, 3), name='branch7x7x3_2')(branch7x7x3)
    branch7x7x3 = BasicConv2d(192, (7, 1), padding=(3, 0), name='branch7x7x3_3')(branch7x7x3)
    branch7x7x3 = BasicConv2d(192, (3, 3), strides=2, name='branch7x7x3_4')(branch7x7x3)
    return jnp.concatenate([branch3x3, branch7x7x3, _max_pool_3x3(x, 2)], axis=-1)


class InceptionE(nn.Module):
  """Mixed_7b/c: expanded 3x3 branches. The FID graph max-pools in Mixed_7c (`max_pool`)."""

  max_pool: bool

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    branch1x1 = BasicConv2d(320, (1, 1), name='branch1x1')(x)
    branch3x3 = BasicConv2d(384, (1, 1), name='branch3x3_1')(x)
    branch3x3 = jnp.concatenate([
        BasicConv2d(384, (1, 3), padding=(0, 1), name='branch3x3_2a')(branch3x3),
        BasicConv2d(384, (3, 1), padding=(1, 0), name='branch3x3_2b')(branch3x3)], axis=-1)
    dbl = BasicConv2d(448, (1, 1), name='branch3x3dbl_1')(x)
    dbl = BasicConv2d(384, (3, 3), padding=(1, 1), name='branch3x3dbl_2')(dbl)
    dbl = jnp.concatenate([
        BasicConv2d(384, (1, 3), padding=(0, 1), name='branch3x3dbl_3a')(dbl),
        BasicConv2d(384, (3, 1), padding=(1, 0), name='branch3x3dbl_3b')(dbl)], axis=-1)
    pooled = _max_pool_3x3(x, 1) if self.max_pool else _avg_pool_3x3(x)
    branch_pool = BasicConv2d(192, (1, 1), name='branch_pool')(pooled)
    return jnp.concatenate([branch1x1, branch3x3, dbl, branch_pool], axis=-1)


class InceptionV3(nn.Module):
  """The FID Inception-v3: images [B, H, W, C] in [-1, 1] -> (pool3 [B, 2048], logits [B, 1008]).

  As pytorch-fid's `InceptionV3(resize_input=True, normalize_input=True)`, whose 2x - 1
  maps [0, 1] to the [-1, 1] expected here: a bilinear resize to `resize_to` (no
  antialiasing, half-pixel centres, i.e. torch's `align_corners=False`; it commutes
  with the affine normalisation). Grey images (C = 1) are repeated to RGB.
  Submodule names are those of the PyTorch model (`Mixed_6e/branch7x7_2/conv`), which
  `convert_pytorch_fid_state_dict` relies on. The logits omit the final layer's bias, as
  the Inception Score's reference code (and torch-fidelity's `logits_unbiased`) does.

  Attributes:
    resize_to: side of the network's input; 299 for FID, smaller (>= 75) only in tests.
  """

  resize_to: int = 299

  @nn.compact
  def __call__(self, images: jax.Array) -> tuple[jax.Array, jax.Array]:
    if images.shape[-1] == 1:
      images = jnp.repeat(images, 3, axis=-1)
    size = self.resize_to
    x = jax.image.resize(images.astype(jnp.float32), (images.shape[0], size, size, 3),
                         'bilinear', antialias=False)
    x = BasicConv2d(32, (3, 3), strides=2, name='Conv2d_1a_3x3')(x)  # [B, 149, 149, 32]
    x = BasicConv2d(32, (3, 3), name='Conv2d_2a_3x3')(x)  # [B, 147, 147, 32]
    x = BasicConv2d(64, (3, 3), padding=(1, 1), name='Conv2d_2b_3x3')(x)
    x = _max_pool_3x3(x, 2)  # [B, 73, 73, 64]
    x = BasicConv2d(80, (1, 1), name='Conv2d_3b_1x1')(x)
    x = BasicConv2d(192, (3, 3), name='Conv2d_4a_3x3')(x)  # [B, 71, 71, 192]
    x = _max_pool_3x3(x, 2)  # [B, 35, 35, 192]
    x = InceptionA(32, name='Mixed_5b')(x)
    x = InceptionA(64, name='Mixed_5c')(x)
    x = InceptionA(64, name='Mixed_5d')(x)  # [B, 35, 35, 288]
    x = InceptionB(name='Mixed_6a')(x)  # [B, 17, 17, 768]
    x = InceptionC(128, name='Mixed_6b')(x)
    x = InceptionC(160, name='Mixed_6c')(x)
    x = InceptionC(160, name='Mixed_6d')(x)
    x = InceptionC(192, name='Mixed_6e')(x)
    x = InceptionD(name='Mixed_7a')(x)  # [B, 8, 8, 1280]
    x = InceptionE(max_pool=False, name='Mixed_7b')(x)
    x = InceptionE(max_pool=True, name='Mixed_7c')(x)  # [B, 8, 8, 2048]
    features = jnp.mean(x, axis=(1, 2))
    logits = nn.Dense(INCEPTION_CLASSES, use_bias=False, precision=PRECISION, name='fc')(features)
    return features, logits


@functools.partial(jax.jit, static_argnames='resize_to')
def _inception_apply(variables: Variables, images: jax.Array,
                     resize_to: int) -> tuple[jax.Array, jax.Array]:
  return InceptionV3(resize_to=resize_to).apply(variables, images)


def inception_features(variables: Variables, images: ArrayLike, *, batch_size: int = 100,
                       resize_to: int = 299) -> tuple[np.ndarray, np.ndarray]:
  """Pool3 features [N, 2048] and logits [N, 1008] of images [N, H, W, C] in [-1, 1].

  Runs `InceptionV3` on batches of `batch_size` (the last one padded, so that it compiles
  once) and gathers the results on the host, in float32.

  Args:
    variables: from `load_inception_params` (or `convert_pytorch_fid_state_dict`).
    images: [N, H, W, C] with C = 1 or 3, in [-1, 1].
    batch_size: images per forward pass.
    resize_to: the network's input side; keep 299 for FID.
  """
  images = np.asarray(images, np.float32)
  batch_size = min(batch_size, len(images))
  variables = jax.device_put(variables)  # once, not at every batch
  features, logits = [], []
  for start in range(0, len(images), batch_size):
    chunk = images[start:start + batch_size]
    padded = np.pad(chunk, [(0, batch_size - len(chunk))] + [(0, 0)] * 3)
    batch_features, batch_logits = jax.device_get(_inception_apply(variables, padded, resize_to))
    features.append(batch_features[:len(chunk)])
    logits.append(batch_logits[:len(chunk)])
  return np.concatenate(features), np.concatenate(logits)


@functools.cache
def _inception_shapes() -> dict[str, tuple[int, ...]]:
  """Flat '/'-joined variable paths of InceptionV3 -> shapes, without computing anything."""
  dummy = jax.ShapeDtypeStruct((1, 75, 75, 3), jnp.float32)
  shapes = jax.eval_shape(InceptionV3(resize_to=75).init, jax.random.key(0), dummy)
  return {path: tuple(leaf.shape)
          for path, leaf in traverse_util.flatten_dict(shapes, sep='/').items()}


def _unflatten(flat: Mapping[str, np.ndarray], source: str) -> Variables:
  """Checks flat variables against InceptionV3's and nests them; `source` names them in errors."""
  expected = _inception_shapes()
  missing, unexpected = sorted(set(expected) - set(flat)), sorted(set(flat) - set(expected))
  if missing or unexpected:
    raise EvaluationError(
        f'{source} does not hold FID Inception-v3 weights: {len(missing)} missing (e.g. '
        f'{missing[:1]}), {len(unexpected)} unexpected (e.g. {unexpected[:1]}); convert '
        f"pytorch-fid's {PYTORCH_FID_WEIGHTS} with convert_pytorch_fid_state_dict")
  for path, shape in expected.items():
    if tuple(flat[path].shape) != shape:
      raise EvaluationError(f'{source}: {path} has shape {tuple(flat[path].shape)}, expected '
                            f'{shape}; convert {PYTORCH_FID_WEIGHTS} with '
                            f'convert_pytorch_fid_state_dict')
  return traverse_util.unflatten_dict(
      {path: np.asarray(value, np.float32) for path, value in flat.items()}, sep='/')


_BATCH_NORM_NAMES = {'weight': 'params/{}/scale', 'bias': 'params/{}/bias',
                     'running_mean': 'batch_stats/{}/mean', 'running_var': 'batch_stats/{}/var'}


def convert_pytorch_fid_state_dict(state_dict: Mapping[str, np.ndarray]) -> Variables:
  """Maps pytorch-fid's FID Inception state dict to `InceptionV3` variables.

  Names keep their module path ('Mixed_5b.branch1x1.conv.weight' ->
  'Mixed_5b/branch1x1/conv/kernel'). Convolution weights go from OIHW to HWIO, the linear
  layer from [out, in] to [in, out]; BatchNorm's weight and bias become params `scale`
  and `bias` and its running mean and variance the `batch_stats` `mean` and `var`.
  `num_batches_tracked` counters and the fc bias (unused by the Inception Score) are dropped.

  Args:
    state_dict: name -> numpy array of pt_inception-2015-12-05-6726825d.pth, e.g.
      `{k: v.numpy() for k, v in torch.load(path, map_location='cpu').items()}`.

  Returns:
    {'params': ..., 'batch_stats': ...} for `InceptionV3().apply`.

  Raises:
    EvaluationError: if the names or shapes are not those of the FID Inception.
  """
  flat = {}
  for name, value in state_dict.items():
    *module, leaf = name.split('.')
    prefix, value = '/'.join(module), np.asarray(value)
    if leaf == 'num_batches_tracked' or name == 'fc.bias':
      continue
    if leaf == 'weight' and value.ndim == 4:
      flat[f'params/{prefix}/kernel'] = value.transpose(2, 3, 1, 0)  # OIHW -> HWIO
    elif leaf == 'weight' and value.ndim == 2:
      flat[f'params/{prefix}/kernel'] = value.T  # [out, in] -> [in, out]
    else:
      # Unknown names are kept as they are, so that the check below reports them.
      flat[_BATCH_NORM_NAMES[leaf].format(prefix) if leaf in _BATCH_NORM_NAMES else name] = value
  return _unflatten(flat, 'the state dict')


def save_inception_params(variables: Variables, path: str | os.PathLike) -> None:
  """Writes InceptionV3 variables to an .npz keyed by '/'-joined paths (the only file I/O)."""
  flat = traverse_util.flatten_dict(jax.device_get(variables), sep='/')
  np.savez(path, **{name: np.asarray(value) for name, value in flat.items()})


def load_inception_params(path: str | os.PathLike) -> Variables:
  """Reads InceptionV3 variables written by `save_inception_params`.

  Raises:
    EvaluationError: if the file is missing, unreadable, or does not hold the FID
      Inception's variables with their shapes; the message says how to produce it.
  """
  if not os.path.isfile(path):
    raise EvaluationError(
        f'Inception weights not found at {os.fspath(path)!r}: convert pytorch-fid\'s '
        f'{PYTORCH_FID_WEIGHTS} once with metrics.inception.convert_pytorch_fid_state_dict and '
        f'save_inception_params (see the metrics.inception module docstring)')
  try:
    with np.load(path, allow_pickle=False) as data:
      flat = {name: data[name] for name in data.files}
  except (OSError, ValueError, zipfile.BadZipFile) as e:
    raise EvaluationError(f'cannot read Inception weights {os.fspath(path)!r} as .npz ({e}); '
                          f'write them with metrics.inception.save_inception_params') from e
  return _unflatten(flat, repr(os.fspath(path)))
