"""Seeded numpy weights, in PyTorch's layouts, shared by tests/models/test_lpips.py and
benchmarks/lpips_reference.py (run in the torch peer interpreter, which imports this file
and nothing else of the project): the reference outputs in tests/testdata/lpips_reference.npz
were computed by the PyTorch modules with these exact weights, so the test regenerates them
instead of shipping them. numpy only; changing anything here needs the script rerun.
"""

import hashlib

import numpy as np

# The lpips package's LPIPS(net='vgg'): (state-dict prefix, in, out channels) of each VGG16
# conv, the prefix naming its index in torchvision's vgg16().features within the slice.
LPIPS_VGG_CONVS = (
    ('net.slice1.0', 3, 64), ('net.slice1.2', 64, 64),
    ('net.slice2.5', 64, 128), ('net.slice2.7', 128, 128),
    ('net.slice3.10', 128, 256), ('net.slice3.12', 256, 256), ('net.slice3.14', 256, 256),
    ('net.slice4.17', 256, 512), ('net.slice4.19', 512, 512), ('net.slice4.21', 512, 512),
    ('net.slice5.24', 512, 512), ('net.slice5.26', 512, 512), ('net.slice5.28', 512, 512),
)
LPIPS_CHANNELS = (64, 128, 256, 512, 512)


def random_lpips_state_dict(seed: int = 0) -> dict[str, np.ndarray]:
  """A random LPIPS-VGG16 state dict in the lpips package's names and layouts (float32).

  Conv weights are He-normal, N(0, 2 / fan_in), so activations keep their scale through
  13 ReLU layers (taps neither vanish nor blow up); biases N(0, 0.1^2) so that a missing
  or misplaced bias shows. The lin weights are U(0, 1), non-negative as the trained ones
  (the package clamps them at 0), which keeps LPIPS >= 0.
  """
  rng = np.random.default_rng(seed)
  tensors = {}
  for prefix, c_in, c_out in LPIPS_VGG_CONVS:
    std = np.float32(np.sqrt(2.0 / (c_in * 9)))
    tensors[f'{prefix}.weight'] = rng.standard_normal((c_out, c_in, 3, 3), np.float32) * std
    tensors[f'{prefix}.bias'] = rng.standard_normal(c_out, np.float32) * np.float32(0.1)
  for k, channels in enumerate(LPIPS_CHANNELS):
    tensors[f'lin{k}.model.1.weight'] = rng.uniform(0, 1, (1, channels, 1, 1)).astype(np.float32)
  return tensors


def patchgan_layout(*, in_channels: int, ndf: int, n_layers: int) -> list[tuple[str, tuple]]:
  """(name, shape) of taming's NLayerDiscriminator state dict with BatchNorm, in order.

  Its `main` Sequential: conv 0, LeakyReLU 1; block n = 1..n_layers: conv 3n - 1 (no
  bias), BatchNorm 3n, LeakyReLU 3n + 1; the output conv at 3 n_layers + 2.
  """
  layout = [('main.0.weight', (ndf, in_channels, 4, 4)), ('main.0.bias', (ndf,))]
  c_in = ndf
  for n in range(1, n_layers + 1):
    c_out = ndf * min(2**n, 8)
    layout += [(f'main.{3 * n - 1}.weight', (c_out, c_in, 4, 4)),
               (f'main.{3 * n}.weight', (c_out,)), (f'main.{3 * n}.bias', (c_out,))]
    c_in = c_out
  out = 3 * n_layers + 2
  return layout + [(f'main.{out}.weight', (1, c_in, 4, 4)), (f'main.{out}.bias', (1,))]


def random_patchgan_state_dict(*, in_channels: int, ndf: int, n_layers: int,
                               seed: int = 0) -> dict[str, np.ndarray]:
  """Random weights for `patchgan_layout`: conv weights He-normal and biases N(0, 0.1^2);
  BatchNorm weights N(1, 0.2^2) and biases N(0, 0.2^2), far enough from (1, 0) to matter."""
  rng = np.random.default_rng(seed)
  layout = patchgan_layout(in_channels=in_channels, ndf=ndf, n_layers=n_layers)
  conv_biases = {name.replace('weight', 'bias') for name, shape in layout if len(shape) == 4}
  tensors = {}
  for name, shape in layout:
    if len(shape) == 4:
      value = rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[1:]))
    elif name in conv_biases:
      value = 0.1 * rng.standard_normal(shape)
    elif name.endswith('bias'):
      value = 0.2 * rng.standard_normal(shape)
    else:
      value = 1 + 0.2 * rng.standard_normal(shape)
    tensors[name] = value.astype(np.float32)
  return tensors


def fingerprint(tensors: dict[str, np.ndarray]) -> str:
  """sha256 of the names and bytes, in sorted order: the weights the reference was made with."""
  digest = hashlib.sha256()
  for name in sorted(tensors):
    digest.update(name.encode())
    digest.update(np.ascontiguousarray(tensors[name]).tobytes())
  return digest.hexdigest()
