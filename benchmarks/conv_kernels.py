"""One 3x3 convolution on CPU: XLA's forward, input and weight gradients against PyTorch's,
and the reformulations that could replace XLA's inside a `jax.custom_vjp`.

For each shape of DDPM++ (b) in `benchmarks/networks.py` (batch 16, stride 1, SAME), the
median time of a jitted call of:
- XLA's own `lax.conv_general_dilated` forward, and its input (dx) and weight (dw)
  gradients as `jax.vjp` makes them;
- dx as a forward convolution with the rotated, transposed kernel (what a custom VJP
  would run instead of XLA's transposed convolution);
- dw with explicit transposes to [C, H, W, B] and [H, W, B, O], then an ordinary
  convolution, and dw as one GEMM over im2col patches [B*H*W, 9C]^T [B*H*W, O];
- the forward as im2col + GEMM, and as Winograd F(2x2, 3x3) (16 batched GEMMs between
  an input and an output transform; its gradients are autodiff's, GEMMs as well);
- a plain GEMM of the im2col shape, for the GFLOP/s XLA's dots reach here.
Each alternative's largest deviation from XLA's result (relative to its max) is printed
next to it. The peer (--peer-python) times `torch.nn.Conv2d` forward (no_grad) and
forward+backward with 2 threads (and 1 with --peer-threads 1), in its own interpreter.

  python benchmarks/conv_kernels.py --peer-python ~/peervenv/bin/python
"""

import argparse
import json
import subprocess
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

NHWC = ('NHWC', 'HWIO', 'NHWC')
SHAPES = [(32, 64, 64), (32, 64, 128), (16, 128, 128), (8, 128, 128), (4, 128, 128)]
# Winograd F(2x2, 3x3) (Lavin & Gray 2016): Y = A^T [(G g G^T) . (B^T d B)] A.
_G = np.array([[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]], np.float32)

PEER = r'''
import json, sys, time, torch
torch.set_num_threads(int(sys.argv[1])); torch.set_flush_denormal(True)
def median(f, n):
  f(); f(); ts = []
  for _ in range(n):
    s = time.perf_counter(); f(); ts.append(time.perf_counter() - s)
  return sorted(ts)[n // 2]
out = {}
for b, h, c, o in json.loads(sys.argv[2]):
  x = torch.randn(b, c, h, h, requires_grad=True); conv = torch.nn.Conv2d(c, o, 3, padding=1)
  with torch.no_grad():
    fwd = median(lambda: conv(x), int(sys.argv[3]))
  g = torch.randn_like(conv(x))
  def step():
    x.grad = None; conv.weight.grad = None
    torch.autograd.backward(conv(x), g)
  out[f'{h},{c},{o}'] = dict(fwd=fwd, fwd_bwd=median(step, int(sys.argv[3])))
print(json.dumps(out))
'''


def conv(x, w):
  return lax.conv_general_dilated(x, w, (1, 1), 'SAME', dimension_numbers=NHWC)


def dx_forward_form(g, w):
  return conv(g, jnp.flip(w, (0, 1)).swapaxes(2, 3))


def dw_transposed(x, g):
  y = lax.conv_general_dilated(x.transpose(3, 1, 2, 0), g.transpose(1, 2, 0, 3), (1, 1),
                               ((1, 1), (1, 1)), dimension_numbers=NHWC)  # [C, 3, 3, O]
  return y.transpose(1, 2, 0, 3)


def _patches(x):
  h, w = x.shape[1:3]
  xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  return jnp.concatenate([xp[:, i:i + h, j:j + w] for i in range(3) for j in range(3)], -1)


def dw_im2col(x, g):
  c = x.shape[-1]
  return (_patches(x).reshape(-1, 9 * c).T @ g.reshape(-1, g.shape[-1])).reshape(3, 3, c, -1)


def fwd_im2col(x, w):
  b, h, wd, c = x.shape
  return (_patches(x).reshape(-1, 9 * c) @ w.reshape(9 * c, -1)).reshape(b, h, wd, -1)


def _input_transform(r):
  return [r[0] - r[2], r[1] + r[2], r[2] - r[1], r[1] - r[3]]


def _output_transform(m):
  return [m[0] + m[1] + m[2], m[1] - m[2] - m[3]]


def fwd_winograd(x, w):
  b, h, wd, c = x.shape
  nh, nw = h // 2, wd // 2
  xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  v = []
  for r in _input_transform([xp[:, a:a + 2 * nh:2] for a in range(4)]):
    v.extend(_input_transform([r[:, :, a:a + 2 * nw:2] for a in range(4)]))
  v = jnp.stack(v).reshape(16, b * nh * nw, c)
  u = jnp.einsum('xi,ijco,yj->xyco', _G, w, _G).reshape(16, c, -1)
  m = jnp.einsum('ptc,pco->pto', v, u).reshape(4, 4, b, nh, nw, -1)
  rows = _output_transform([m[i] for i in range(4)])
  y = jnp.stack([jnp.stack(_output_transform([r[j] for j in range(4)]), axis=3) for r in rows],
                axis=2)  # [b, nh, 2, nw, 2, o]
  return y.reshape(b, h, wd, -1)


def _median(f, *args, reps):
  jax.block_until_ready(f(*args))
  jax.block_until_ready(f(*args))
  times = []
  for _ in range(reps):
    start = time.perf_counter()
    jax.block_until_ready(f(*args))
    times.append(time.perf_counter() - start)
  return float(np.median(times))


def _deviation(a, b):
  return float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b)))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--batch', type=int, default=16)
  parser.add_argument('--reps', type=int, default=9)
  parser.add_argument('--peer-python', default=None)
  parser.add_argument('--peer-threads', type=int, nargs='+', default=[2])
  args = parser.parse_args()
  b = args.batch
  peer = {}
  for threads in args.peer_threads if args.peer_python else []:
    shapes = json.dumps([[b, *s] for s in SHAPES])
    out = subprocess.run([args.peer_python, '-c', PEER, str(threads), shapes, str(args.reps)],
                         capture_output=True, text=True, check=True).stdout
    peer[threads] = json.loads(out)

  print(f'# jax {jax.__version__}, {jax.device_count()} device(s), batch {b}, medians of '
        f'{args.reps}; ms (GFLOP/s)\n')
  columns = ['fwd', 'dx', 'dw', 'fwd+dx+dw', 'dx fwd-form', 'dw transposed', 'dw im2col',
             'fwd im2col', 'fwd winograd', 'winograd fwd+bwd', 'GEMM']
  columns += [f'torch{n} {p}' for n in peer for p in ('fwd', 'fwd+bwd')]
  print('| H, C->O | ' + ' | '.join(columns) + ' |')
  print('|---' * (len(columns) + 1) + '|')
  deviations = []
  for h, c, o in SHAPES:
    keys = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(keys[0], (b, h, h, c))
    w = jax.random.normal(keys[1], (3, 3, c, o)) * 0.05
    g = jax.random.normal(keys[2], (b, h, h, o))
    gemm_a = jax.random.normal(keys[0], (b * h * h, 9 * c))
    gemm_b = jax.random.normal(keys[1], (9 * c, o))
    gflop = 2 * b * h * h * 9 * c * o / 1e9
    fwd = jax.jit(conv)
    dx = jax.jit(lambda x, w, g: jax.vjp(lambda x: conv(x, w), x)[1](g)[0])
    dw = jax.jit(lambda x, w, g: jax.vjp(lambda w: conv(x, w), w)[1](g)[0])
    wino_grads = jax.jit(lambda x, w, g: jax.vjp(fwd_winograd, x, w)[1](g))
    alternatives = {'dx fwd-form': (jax.jit(dx_forward_form), (g, w), dx(x, w, g)),
                    'dw transposed': (jax.jit(dw_transposed), (x, g), dw(x, w, g)),
                    'dw im2col': (jax.jit(dw_im2col), (x, g), dw(x, w, g)),
                    'fwd im2col': (jax.jit(fwd_im2col), (x, w), fwd(x, w)),
                    'fwd winograd': (jax.jit(fwd_winograd), (x, w), fwd(x, w))}
    t = {'fwd': _median(fwd, x, w, reps=args.reps), 'dx': _median(dx, x, w, g, reps=args.reps),
         'dw': _median(dw, x, w, g, reps=args.reps)}
    t['fwd+dx+dw'] = t['fwd'] + t['dx'] + t['dw']
    for name, (f, a, reference) in alternatives.items():
      t[name] = _median(f, *a, reps=args.reps)
      deviations.append(f'{h}x{h} {c}->{o} {name}: {_deviation(f(*a), reference):.0e}')
    t['winograd fwd+bwd'] = t['fwd winograd'] + _median(wino_grads, x, w, g, reps=args.reps)
    t['GEMM'] = _median(jax.jit(jnp.matmul), gemm_a, gemm_b, reps=args.reps)
    for n, result in peer.items():
      t[f'torch{n} fwd'] = result[f'{h},{c},{o}']['fwd']
      t[f'torch{n} fwd+bwd'] = result[f'{h},{c},{o}']['fwd_bwd']
    flops = {k: 3 * gflop if ('+' in k) else gflop for k in columns}
    print(f'| {h}x{h}, {c}->{o} | '
          + ' | '.join(f'{t[k] * 1e3:.2f} ({flops[k] / t[k]:.0f})' for k in columns) + ' |',
          flush=True)
  print('\nLargest deviation from XLA\'s own result, relative to its max:')
  for line in deviations:
    print(f'- {line}')


if __name__ == '__main__':
  main()
