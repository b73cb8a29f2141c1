"""The peers of benchmarks/fast_samplers.py: k-diffusion's and diffusers' samplers on the
same mixture, driven by its exact denoiser. Runs in the peer interpreter (torch CPU,
diffusers, k-diffusion installed with --no-deps, torchsde, torchdiffeq), never in the
project's; fast_samplers.py starts it with --peer-python and reads what it writes.

  PEER_PYTHON benchmarks/peer_samplers.py IN.npz OUT.npz

IN.npz: the mixture (means [K, D], stds [K, D], weights [K]), x_tilde_T [N, D] (the
prior draw in k-diffusion's variables x / alpha), sigma_min, sigma_max, rho, nfes, and
train_sigmas [1000]: the noise levels sigma = std / alpha of the SDE at 1000 times from
eps to T, which become the discrete schedule (trained_betas) of diffusers' schedulers,
so that their VP variables x_vp = x_tilde / sqrt(1 + sigma^2) follow the same ODE.
OUT.npz: for every peer sampler and NFE, the endpoint in x_tilde (= x at sigma = 0), the
NFE it spent (counted in the denoiser) and the seconds.
"""

import importlib.metadata
import importlib.util
import json
import math
import sys
import time
import types

import numpy as np
import torch

torch.set_num_threads(2)


def _import_k_diffusion():
  """k_diffusion.sampling without the package's __init__, which imports training code
  (torchvision, clip, wandb) the sampler does not use."""
  spec = importlib.util.find_spec('k_diffusion')
  package = types.ModuleType('k_diffusion')
  package.__path__ = list(spec.submodule_search_locations)
  sys.modules['k_diffusion'] = package
  for name in ('torchvision', 'torchvision.transforms', 'torchvision.transforms.functional'):
    sys.modules.setdefault(name, types.ModuleType(name))
  import k_diffusion.sampling as sampling  # noqa: PLC0415
  return sampling


class Denoiser:
  """D(x_tilde; sigma) of a diagonal Gaussian mixture, exactly, counting its calls."""

  def __init__(self, means, stds, weights):
    self.means = torch.tensor(means, dtype=torch.float32)  # [K, D]
    self.var = torch.tensor(stds, dtype=torch.float32) ** 2  # [K, D]
    self.log_w = torch.log(torch.tensor(weights, dtype=torch.float32))
    self.calls = 0

  def __call__(self, x, sigma):
    self.calls += 1
    s2 = sigma.reshape(-1, 1, 1).to(torch.float32) ** 2  # [B, 1, 1]
    var = self.var[None] + s2  # [B, K, D]
    diff = x[:, None, :] - self.means[None]
    logp = self.log_w - 0.5 * torch.sum(diff**2 / var + torch.log(2 * math.pi * var), dim=-1)
    post = torch.softmax(logp, dim=-1)  # [B, K]
    x0_k = self.means[None] + self.var[None] / var * diff
    return torch.sum(post[..., None] * x0_k, dim=1)


def k_diffusion_runs(kd, denoiser, x_T, args):
  sigmas_of = lambda n: kd.get_sigmas_karras(n, args['sigma_min'], args['sigma_max'],  # noqa: E731
                                             rho=args['rho'])
  samplers = {
      'k-diffusion euler': (kd.sample_euler, {}, 1),
      'k-diffusion heun': (kd.sample_heun, {}, 2),
      'k-diffusion dpm_2': (kd.sample_dpm_2, {}, 2),
      'k-diffusion lms': (kd.sample_lms, {}, 1),
      'k-diffusion dpmpp_2m': (kd.sample_dpmpp_2m, {}, 1),
      # eta = 0: deterministic, so that it can be compared with the ODE endpoint.
      'k-diffusion dpmpp_3m_sde (eta=0)': (kd.sample_dpmpp_3m_sde, {'eta': 0.0}, 1),
  }
  for label, (fn, options, per_step) in samplers.items():
    for nfe in args['nfes']:
      n = nfe if per_step == 1 else (nfe + 1) // 2  # Heun-type: 2 n - 1 evaluations
      denoiser.calls = 0
      start = time.perf_counter()
      x = fn(denoiser, x_T.clone(), sigmas_of(n), disable=True, **options)
      yield label, nfe, x, denoiser.calls, time.perf_counter() - start


def diffusers_runs(denoiser, x_T, args):
  from diffusers import (DDIMScheduler, DPMSolverMultistepScheduler,  # noqa: PLC0415
                         UniPCMultistepScheduler)

  train_sigmas = np.asarray(args['train_sigmas'], np.float64)
  alphas_cumprod = 1.0 / (1.0 + train_sigmas**2)
  betas = 1.0 - alphas_cumprod / np.concatenate([[1.0], alphas_cumprod[:-1]])
  common = {'trained_betas': betas.tolist(), 'num_train_timesteps': len(betas)}
  configs = {
      'diffusers DPMSolverMultistep (2M, karras)': (DPMSolverMultistepScheduler, {
          'solver_order': 2, 'use_karras_sigmas': True, 'final_sigmas_type': 'zero'}),
      'diffusers DPMSolverMultistep (3M, karras)': (DPMSolverMultistepScheduler, {
          'solver_order': 3, 'use_karras_sigmas': True, 'final_sigmas_type': 'zero'}),
      'diffusers UniPCMultistep (bh2, 3, karras)': (UniPCMultistepScheduler, {
          'solver_order': 3, 'use_karras_sigmas': True, 'final_sigmas_type': 'zero'}),
      'diffusers UniPCMultistep (bh2, 2, karras)': (UniPCMultistepScheduler, {
          'solver_order': 2, 'use_karras_sigmas': True, 'final_sigmas_type': 'zero'}),
      'diffusers DDIM (trailing)': (DDIMScheduler, {
          'clip_sample': False, 'set_alpha_to_one': True, 'timestep_spacing': 'trailing'}),
  }
  for label, (cls, options) in configs.items():
    for nfe in args['nfes']:
      scheduler = cls(**common, **options)
      scheduler.set_timesteps(nfe)
      alphas = torch.tensor(alphas_cumprod, dtype=torch.float32)
      denoiser.calls = 0
      start = time.perf_counter()
      sigma_T = (scheduler.sigmas[0] if hasattr(scheduler, 'sigmas')
                 else torch.sqrt((1 - alphas[scheduler.timesteps[0]]) /
                                 alphas[scheduler.timesteps[0]]))
      x = x_T / torch.sqrt(1 + sigma_T**2)  # into VP variables at the first level
      for i, t in enumerate(scheduler.timesteps):
        # The denoiser at the noise level the scheduler itself steps from.
        if hasattr(scheduler, 'sigmas'):
          sigma = scheduler.sigmas[i].to(torch.float32)
        else:
          sigma = torch.sqrt((1 - alphas[t]) / alphas[t])
        alpha = 1.0 / torch.sqrt(1 + sigma**2)
        x0 = denoiser(x / alpha, sigma.expand(x.shape[0]))
        eps = (x - alpha * x0) / (sigma * alpha)
        x = scheduler.step(eps, t, x).prev_sample
      yield label, nfe, x, denoiser.calls, time.perf_counter() - start


def main(in_path: str, out_path: str) -> None:
  with np.load(in_path) as data:
    args = {k: data[k] for k in data.files}
  args['nfes'] = [int(n) for n in args['nfes']]
  for key in ('sigma_min', 'sigma_max', 'rho'):
    args[key] = float(args[key])
  denoiser = Denoiser(args['means'], args['stds'], args['weights'])
  x_T = torch.tensor(args['x_tilde_T'], dtype=torch.float32)
  import diffusers  # noqa: PLC0415 (before the stand-in torchvision modules of k-diffusion)
  kd = _import_k_diffusion()
  results, meta = {}, []
  with torch.no_grad():
    for runs in (k_diffusion_runs(kd, denoiser, x_T, args), diffusers_runs(denoiser, x_T, args)):
      for label, nfe, x, calls, seconds in runs:
        key = f'run{len(meta)}'
        results[key] = x.numpy()
        meta.append({'key': key, 'sampler': label, 'target_nfe': nfe, 'nfe': calls,
                     'seconds': seconds})
  versions = {'torch': torch.__version__, 'diffusers': diffusers.__version__,
              'k_diffusion': importlib.metadata.version('k-diffusion')}
  np.savez(out_path, meta=json.dumps({'runs': meta, 'versions': versions}), **results)


if __name__ == '__main__':
  main(*sys.argv[1:])
