"""LPIPS (Zhang et al. 2018) with the VGG16 backbone: the perceptual loss of Latent
Diffusion's autoencoder, computed as the `lpips` package's `LPIPS(net='vgg')` (v0.1) and
taming-transformers' copy of it compute it.

Images in [-1, 1] are shifted and scaled per channel (the package's ScalingLayer), run
through torchvision's VGG16 conv layers, and tapped after relu1_2, relu2_2, relu3_3,
relu4_3 and relu5_3. Each tap is unit-normalised over its channels, the two images'
squared differences are weighted per channel by a learned 1x1 'lin' layer (no bias; its
dropout is off at evaluation, as Latent Diffusion always uses it), averaged over space,
and the five layers' values are summed: one distance per image pair.

Weights cannot be downloaded at run time: they are read from a local .safetensors or
.npz file holding the PyTorch state dict. Make it once, where torch and the lpips package
are installed (`pip install lpips safetensors`; the first LPIPS(net='vgg') downloads
torchvision's ImageNet VGG16):

  import lpips, safetensors.torch
  state_dict = lpips.LPIPS(net='vgg').state_dict()
  # 'lins.k.*' repeat 'link.*' (the same tensors), which safetensors refuses to save twice.
  safetensors.torch.save_file(
      {name: value for name, value in state_dict.items() if not name.startswith('lins.')},
      'lpips_vgg.safetensors')

(or `numpy.savez('lpips_vgg.npz', **{name: value.numpy() for ...})`); then

  params = models.load_lpips_params('lpips_vgg.safetensors')
  distance = models.LPIPS().apply({'params': params}, x0, x1)  # [B]

taming's own LPIPS checkpoint (its 'vgg_lpips' vgg.pth) holds the same 'lin' layers;
torchvision's vgg16 state dict ('features.0.weight', ...) is accepted for the backbone.
"""

import functools
import os
import re
import zipfile
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import safetensors
import safetensors.numpy
from flax import traverse_util

# The lpips package's ScalingLayer: [-1, 1] images to (approximately) ImageNet's standardised
# inputs, the statistics torchvision's VGG16 was trained on.
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)

# torchvision's vgg16().features, block by block: (name, index in `features`, channels) of
# each 3x3 conv, each followed by a ReLU; a 2x2 max pool starts every block after the first.
# LPIPS taps the last ReLU of each block.
VGG16_BLOCKS = (
    (('conv1_1', 0, 64), ('conv1_2', 2, 64)),
    (('conv2_1', 5, 128), ('conv2_2', 7, 128)),
    (('conv3_1', 10, 256), ('conv3_2', 12, 256), ('conv3_3', 14, 256)),
    (('conv4_1', 17, 512), ('conv4_2', 19, 512), ('conv4_3', 21, 512)),
    (('conv5_1', 24, 512), ('conv5_2', 26, 512), ('conv5_3', 28, 512)),
)
_CONV_BY_INDEX = {index: name for block in VGG16_BLOCKS for name, index, _ in block}
# Four 2x2 pools: the last tap is 1 x 1 for a 16 x 16 image, empty below.
MIN_SIZE = 16


def _unit_normalize(x: jax.Array, eps: float = 1e-10) -> jax.Array:
  """x / (||x|| + eps) over the channels (last axis), as lpips.normalize_tensor.

  sqrt's derivative is infinite at 0, so the plain formula has a NaN gradient wherever a
  feature vector is all zero (every ReLU of a pixel off). The inner `where` keeps the
  value and gives those pixels the derivative of x / eps instead.
  """
  sum_squares = jnp.sum(jnp.square(x), axis=-1, keepdims=True)
  positive = sum_squares > 0
  norm = jnp.where(positive, jnp.sqrt(jnp.where(positive, sum_squares, 1.0)), 0.0)
  return x / (norm + eps)


class LPIPS(nn.Module):
  """LPIPS distance of image pairs: (x0, x1) [B, H, W, C] in [-1, 1] -> [B], >= 0.

  C = 3 (RGB), or 1 (repeated to RGB, so that grey autoencoders get a perceptual loss
  too); H, W >= 16. The computation is in float32. Submodule names are those of VGG16's
  layers ('conv3_2') and the lpips package's ('lin0' ... 'lin4'); get the params with
  `load_lpips_params` (`init` gives a random network, only good for shapes).

  Attributes:
    precision: of the convolutions; None is the backend's default (TF32 on recent NVIDIA
      GPUs, as PyTorch's cuDNN convolutions); jax.lax.Precision.HIGHEST for a metric that
      does not depend on the accelerator.
  """

  precision: jax.lax.PrecisionLike = None

  def __call__(self, x0: jax.Array, x1: jax.Array) -> jax.Array:
    """The LPIPS distance [B]: the sum of `layer_distances` over the five layers."""
    return jnp.sum(self.layer_distances(x0, x1), axis=-1)

  @nn.compact
  def layer_distances(self, x0: jax.Array, x1: jax.Array) -> jax.Array:
    """Each tapped layer's term [B, 5] (the package's retPerLayer values), relu1_2 first."""
    if x0.shape != x1.shape or x0.ndim != 4 or x0.shape[-1] not in (1, 3):
      raise ValueError(f'LPIPS needs two image batches [B, H, W, 1 or 3] of one shape, got '
                       f'{x0.shape} and {x1.shape}')
    if min(x0.shape[1:3]) < MIN_SIZE:
      raise ValueError(f'LPIPS needs images of at least {MIN_SIZE}x{MIN_SIZE} (VGG16 pools '
                       f'them 4 times), got {x0.shape[1]}x{x0.shape[2]}')
    x = jnp.concatenate([x0, x1]).astype(jnp.float32)  # [2B, H, W, C]: one pass for both
    x = jnp.broadcast_to(x, x.shape[:-1] + (3,))
    x = (x - jnp.array(SHIFT)) / jnp.array(SCALE)
    distances = []
    for k, block in enumerate(VGG16_BLOCKS):
      if k > 0:
        x = nn.max_pool(x, (2, 2), strides=(2, 2))  # floors odd sides, as torch's MaxPool2d
      for name, _, channels in block:
        x = nn.relu(nn.Conv(channels, (3, 3), padding=((1, 1), (1, 1)),
                            precision=self.precision, name=name)(x))
      f0, f1 = jnp.split(_unit_normalize(x), 2)  # [B, h, w, channels] each
      weighted = nn.Conv(1, (1, 1), use_bias=False, precision=self.precision,
                         name=f'lin{k}')(jnp.square(f0 - f1))  # [B, h, w, 1]
      distances.append(jnp.mean(weighted, axis=(1, 2, 3)))
    return jnp.stack(distances, axis=-1)


@functools.cache
def _lpips_shapes() -> dict[str, tuple[int, ...]]:
  """Flat '/'-joined param paths of LPIPS -> shapes, without computing anything."""
  dummy = jax.ShapeDtypeStruct((1, MIN_SIZE, MIN_SIZE, 3), jnp.float32)
  shapes = jax.eval_shape(LPIPS().init, jax.random.key(0), dummy, dummy)['params']
  return {path: tuple(leaf.shape)
          for path, leaf in traverse_util.flatten_dict(shapes, sep='/').items()}


# Backbone: the lpips package's 'net.slice2.5.weight' or torchvision's 'features.5.weight'.
_CONV_KEY = re.compile(r'(?:net\.slice[1-5]|features)\.(\d+)\.(weight|bias)')
# 'lin' layers: 'lin0.model.1.weight' ('model.0' without dropout); 'lins.0.' is an alias.
_LIN_KEY = re.compile(r'lin(?:s\.)?([0-4])\.model\.[01]\.weight')
_IGNORED_KEY = re.compile(r'classifier\..*')  # torchvision vgg16's fully connected head


def _oihw_to_hwio(value: np.ndarray) -> np.ndarray:
  # Other ranks are left for the shape check to report.
  return value.transpose(2, 3, 1, 0) if value.ndim == 4 else value


def convert_lpips_state_dict(tensors: Mapping[str, np.ndarray]) -> dict[str, Any]:
  """Maps the lpips package's LPIPS(net='vgg') state dict to `LPIPS` params.

  Conv weights go from OIHW to HWIO; 'net.sliceK.I.*' and torchvision's 'features.I.*'
  both name the conv at index I of vgg16().features. The package's ScalingLayer buffers,
  when present, must hold the constants `LPIPS` uses; torchvision's classifier is ignored.

  Args:
    tensors: name -> array, e.g. `{k: v.numpy() for k, v in model.state_dict().items()}`,
      or torchvision's vgg16 state dict merged with the lin layers of lpips' vgg.pth.

  Returns:
    The 'params' of `LPIPS`, float32.

  Raises:
    ValueError: for missing, unknown or misshapen weights, or another ScalingLayer.
  """
  flat = {}
  for name, value in tensors.items():
    value = np.asarray(value)
    if (match := _CONV_KEY.fullmatch(name)) and int(match[1]) in _CONV_BY_INDEX:
      conv = _CONV_BY_INDEX[int(match[1])]
      if match[2] == 'weight':
        path, value = f'{conv}/kernel', _oihw_to_hwio(value)
      else:
        path = f'{conv}/bias'
    elif match := _LIN_KEY.fullmatch(name):
      path, value = f'lin{match[1]}/kernel', _oihw_to_hwio(value)
    elif name in ('scaling_layer.shift', 'scaling_layer.scale'):
      constants = SHIFT if name.endswith('shift') else SCALE
      if value.size != 3 or not np.allclose(value.ravel(), constants, atol=1e-6):
        raise ValueError(f'{name} is {value.ravel()}, not the {constants} that LPIPS uses')
      continue
    elif _IGNORED_KEY.fullmatch(name):
      continue
    else:
      raise ValueError(f'unexpected weight {name!r} for LPIPS-VGG16 (an AlexNet or '
                       f'SqueezeNet LPIPS?)')
    if path in flat and not np.array_equal(flat[path], value):
      raise ValueError(f'{name!r} differs from another name of the same weight ({path})')
    flat[path] = value
  expected = _lpips_shapes()
  if missing := sorted(set(expected) - set(flat)):
    raise ValueError(f'LPIPS weights missing for {len(missing)} params (e.g. {missing[0]}): '
                     f"save the whole lpips.LPIPS(net='vgg').state_dict()")
  for path, shape in expected.items():
    if flat[path].shape != shape:
      raise ValueError(f'LPIPS weight {path} has shape {flat[path].shape}, expected {shape}')
  return traverse_util.unflatten_dict(
      {path: np.asarray(value, np.float32) for path, value in flat.items()}, sep='/')


def load_lpips_params(path: str | os.PathLike) -> dict[str, Any]:
  """Reads the LPIPS state dict saved as .safetensors or .npz (module docstring) as params.

  Raises:
    ValueError: if the file is missing, not of those formats, unreadable, or does not
      hold LPIPS-VGG16's weights.
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise ValueError(f'LPIPS weights not found at {path!r}: save the lpips package\'s '
                     f'state dict there once (see the models.lpips docstring)')
  if not path.endswith(('.safetensors', '.npz')):
    raise ValueError(f'LPIPS weights must be a .safetensors or .npz file, got {path!r}')
  if path.endswith('.npz') and not zipfile.is_zipfile(path):
    # np.load would try it as a pickle and say so, which is confusing.
    raise ValueError(f'cannot read LPIPS weights {path!r}: not an .npz (zip) archive')
  try:
    if path.endswith('.safetensors'):
      tensors = safetensors.numpy.load_file(path)
    else:
      with np.load(path, allow_pickle=False) as data:
        tensors = {name: data[name] for name in data.files}
  except (OSError, ValueError, zipfile.BadZipFile, safetensors.SafetensorError) as e:
    raise ValueError(f'cannot read LPIPS weights {path!r} ({e})') from e
  return convert_lpips_state_dict(tensors)
