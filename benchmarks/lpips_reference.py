"""Reference outputs for tests/models/test_lpips.py from PyTorch: the lpips package's LPIPS
and taming-transformers' PatchGAN discriminator, with seeded numpy weights.

Runs in a torch interpreter with `pip install lpips` (torch, torchvision; the package ships
its lin weights, and pnet_rand=True builds VGG16 without downloading ImageNet weights),
never in the project's, which does not import torch:

  PEER_PYTHON benchmarks/lpips_reference.py [tests/testdata/lpips_reference.npz]

The weights come from tests/models/reference_weights.py, which the test imports too and
regenerates, so only the inputs, the outputs and the weights' fingerprints are written (a
few KB instead of VGG16's 58 MB):

- LPIPS: lpips.LPIPS(net='vgg', pnet_rand=True) with every VGG16 and lin weight replaced
  by `random_lpips_state_dict(0)`, in eval mode, on 2 pairs of 33 x 40 uint8 images mapped
  to [-1, 1] (odd and even sides, so max pooling's flooring is exercised): the distances
  and their per-layer terms.
- PatchGAN: taming's NLayerDiscriminator(input_nc=3, ndf=8, n_layers=3) with BatchNorm,
  in training mode as Latent Diffusion always runs it, with `random_patchgan_state_dict`,
  on 4 uint8 images of 32 x 32 mapped to [-1, 1]: the patch logits. taming-transformers
  is not on PyPI, so its `main` Sequential is rebuilt here layer for layer from torch.nn;
  its parameter counts at the defaults (RGB, ndf 64, 3 layers) and a few variants are
  saved too.

The file records the versions it was made with ('versions'; torch 2.14.1, lpips 0.1.4,
numpy 2.4.6 for the committed one).
"""

import os
import sys
from importlib.metadata import version

import lpips
import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from tests.models import reference_weights  # noqa: E402  (numpy only)

OUT = 'tests/testdata/lpips_reference.npz'
DISC = dict(in_channels=3, ndf=8, n_layers=3)


def to_unit_range(images: np.ndarray) -> np.ndarray:
  """uint8 images -> float32 in [-1, 1], as an image pipeline makes them (the test too)."""
  return images.astype(np.float32) / np.float32(127.5) - np.float32(1)


def lpips_inputs() -> tuple[np.ndarray, np.ndarray]:
  """Two pairs [2, 33, 40, 3] of uint8 images: an image and a noisy copy; two unrelated ones."""
  rng = np.random.default_rng(1)
  x0 = rng.integers(0, 256, (2, 33, 40, 3))
  x1 = np.stack([np.clip(x0[0] + rng.normal(0, 25, x0.shape[1:]).round(), 0, 255),
                 rng.integers(0, 256, x0.shape[1:])])
  return x0.astype(np.uint8), x1.astype(np.uint8)


def nchw(x: np.ndarray) -> torch.Tensor:
  return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def lpips_reference() -> dict[str, np.ndarray]:
  tensors = reference_weights.random_lpips_state_dict(0)
  model = lpips.LPIPS(net='vgg', pnet_rand=True, verbose=False)
  state = model.state_dict()
  for name, value in tensors.items():
    state[name] = torch.from_numpy(value)
    if name.startswith('lin'):  # 'lins.k' names the same module as 'link'
      state[name.replace('lin', 'lins.', 1)] = torch.from_numpy(value)
  model.load_state_dict(state, strict=True)
  model.eval()
  checks = ((model.net.slice5[-2], 'net.slice5.28'), (model.lins[4].model[1], 'lin4.model.1'))
  for module, name in checks:
    assert torch.equal(module.weight, torch.from_numpy(tensors[f'{name}.weight']))
  x0, x1 = lpips_inputs()
  with torch.no_grad():  # distance [N, 1, 1, 1]; layers: 5 of those
    distance, layers = model(nchw(to_unit_range(x0)), nchw(to_unit_range(x1)), retPerLayer=True)
  return {'lpips_x0': x0, 'lpips_x1': x1,
          'lpips': distance.reshape(-1).numpy(),
          'lpips_layers': torch.cat([t.reshape(-1, 1) for t in layers], 1).numpy(),  # [N, 5]
          'lpips_weights_sha256': np.array(reference_weights.fingerprint(tensors))}


def taming_patchgan(*, in_channels: int, ndf: int, n_layers: int) -> nn.Sequential:
  """taming's NLayerDiscriminator(use_actnorm=False).main: the same layers in the same order."""
  layers = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
  c_in = ndf
  for n in range(1, n_layers + 1):
    c_out = ndf * min(2**n, 8)
    layers += [nn.Conv2d(c_in, c_out, 4, stride=2 if n < n_layers else 1, padding=1, bias=False),
               nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2, True)]
    c_in = c_out
  layers.append(nn.Conv2d(c_in, 1, 4, stride=1, padding=1))
  return nn.Sequential(*layers)


def patchgan_reference() -> dict[str, np.ndarray]:
  main = taming_patchgan(**DISC)
  tensors = reference_weights.random_patchgan_state_dict(**DISC)
  # The names of taming's module: NLayerDiscriminator holds the Sequential as `main`.
  missing, unexpected = nn.ModuleDict({'main': main}).load_state_dict(
      {k: torch.from_numpy(v) for k, v in tensors.items()}, strict=False)
  assert not unexpected and all(k.rsplit('.', 1)[1] in ('running_mean', 'running_var',
                                                        'num_batches_tracked') for k in missing)
  main.train()  # batch statistics, as Latent Diffusion's loss always runs it
  x = np.random.default_rng(2).integers(0, 256, (4, 32, 32, DISC['in_channels']), np.uint8)
  with torch.no_grad():
    logits = main(nchw(to_unit_range(x))).numpy().transpose(0, 2, 3, 1)  # [4, 2, 2, 1]
  counts = []  # [in_channels, ndf, n_layers, count]
  for c_in, ndf, n_layers in [(3, 64, 3), (1, 64, 3), (3, 64, 2), (3, 8, 3)]:
    module = taming_patchgan(in_channels=c_in, ndf=ndf, n_layers=n_layers)
    counts.append((c_in, ndf, n_layers, sum(p.numel() for p in module.parameters())))
  return {'patchgan_x': x, 'patchgan_logits': logits,
          'patchgan_weights_sha256': np.array(reference_weights.fingerprint(tensors)),
          'patchgan_params': np.array(counts)}


def main() -> None:
  torch.manual_seed(0)
  torch.set_num_threads(2)
  out = sys.argv[1] if len(sys.argv) > 1 else OUT
  results = {**lpips_reference(), **patchgan_reference(),
             'versions': np.array(f'torch {torch.__version__}, lpips {version("lpips")}, '
                                  f'numpy {np.__version__}')}
  os.makedirs(os.path.dirname(out) or '.', exist_ok=True)
  np.savez(out, **results)
  for name, value in results.items():
    if name in ('lpips', 'lpips_layers', 'patchgan_params', 'versions'):
      print(f'{name}: {value}')
  print(f'wrote {out} ({os.path.getsize(out)} bytes)')


if __name__ == '__main__':
  main()
