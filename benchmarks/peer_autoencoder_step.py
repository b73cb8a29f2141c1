"""The PyTorch peer of an autoencoder train step: diffusers' AutoencoderKL (LDM's kl-f8 or
kl-f4, random initialisation) trained on LDM's loss without its GAN and LPIPS (L1 + a
learned log-variance + 1e-6 KL, summed per image as LDM does), Adam(0.5, 0.9), at the same
batch and size as `benchmarks/paper_steps.py --configs latent/kl_f8.py --set
autoencoder.disc_layers=0`. Run with an interpreter that has torch and diffusers (never the
project's):

  python3 benchmarks/peer_autoencoder_step.py --f 8 --batch 12 --size 256

Compile-free, so the first --warmup steps only warm cuDNN's algorithm choice; then the
median of --steps steps, each ended by torch.cuda.synchronize. Prints one JSON line.
"""

import argparse
import json
import statistics
import time

import torch
from diffusers import AutoencoderKL


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--f', type=int, default=8, choices=[4, 8])
  parser.add_argument('--batch', type=int, default=12)
  parser.add_argument('--size', type=int, default=256)
  parser.add_argument('--steps', type=int, default=10)
  parser.add_argument('--warmup', type=int, default=3)
  args = parser.parse_args()
  device = 'cuda' if torch.cuda.is_available() else 'cpu'
  widths = (128, 256, 512, 512) if args.f == 8 else (128, 256, 512)
  channels = 4 if args.f == 8 else 3
  model = AutoencoderKL(in_channels=3, out_channels=3, block_out_channels=widths,
                        down_block_types=('DownEncoderBlock2D',) * len(widths),
                        up_block_types=('UpDecoderBlock2D',) * len(widths),
                        layers_per_block=2, latent_channels=channels).to(device)
  logvar = torch.nn.Parameter(torch.zeros((), device=device))
  optimizer = torch.optim.Adam([*model.parameters(), logvar], lr=4.5e-6 * args.batch,
                               betas=(0.5, 0.9))
  x = torch.rand(args.batch, 3, args.size, args.size, device=device) * 2 - 1

  def step():
    posterior = model.encode(x).latent_dist
    rec = model.decode(posterior.sample()).sample
    nll = (torch.abs(x - rec) / torch.exp(logvar) + logvar).sum() / args.batch
    kl = posterior.kl().sum() / args.batch
    loss = nll + 1e-6 * kl
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss

  for _ in range(args.warmup):
    step()
  times = []
  for _ in range(args.steps):
    if device == 'cuda':
      torch.cuda.synchronize()
    start = time.perf_counter()
    loss = step()
    if device == 'cuda':
      torch.cuda.synchronize()
    times.append(time.perf_counter() - start)
  seconds = statistics.median(times)
  peak = torch.cuda.max_memory_allocated() / 2**30 if device == 'cuda' else 0.0
  print(json.dumps({'peer': f'diffusers AutoencoderKL kl-f{args.f}', 'torch': torch.__version__,
                    'device': torch.cuda.get_device_name() if device == 'cuda' else 'cpu',
                    'tf32_conv': torch.backends.cudnn.allow_tf32, 'batch': args.batch,
                    'parameters': sum(p.numel() for p in model.parameters()),
                    'step_ms': 1e3 * seconds, 'images_per_s': args.batch / seconds,
                    'peak_gib': peak, 'loss': float(loss.detach())}))


if __name__ == '__main__':
  main()
