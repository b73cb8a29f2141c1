"""Score networks on CPU: size, compile time and throughput, against a PyTorch peer.

For each network configuration: the parameter count (from `jax.eval_shape` of
init, no memory spent), the compile time of the jitted forward and of the jitted
forward+backward (`value_and_grad` of a mean-squared loss over the parameters,
train=True with dropout), and steady-state throughput in images/s of both (the
median of several timed calls after a warm-up call, each ended by
`block_until_ready`). The forward runs with train=False. Our calls and the
peer's are timed round-robin, call by call, so that the varying load of a shared
machine falls on both alike (the load average is printed with each table).

When the script is run with XLA_FLAGS=--xla_force_host_platform_device_count=N,
it also measures our networks with the batch sharded over the N host devices
(`NamedSharding` on a 1-D mesh 'data': batch sharded, parameters replicated),
next to the single-device run: where XLA's CPU convolutions keep to one core per
device, this is how a program uses the others.

The peer, run side by side, is diffusers' `UNet2DModel` in PyTorch on CPU
(torch.set_num_threads = the number of cores), built as the closest equivalent
of each configuration and with its base width chosen so that its parameter count
is within a few % of ours: its forward runs in eval mode under torch.no_grad,
its forward+backward in train mode (dropout on) with an ordinary backward.
Denormals are flushed to zero on both sides (XLA's CPU backend does it by
default; torch.set_flush_denormal(True) for the peer, whose first calls are
otherwise up to 20x slower). When the load average exceeds the cores, the peer
runs with OMP_WAIT_POLICY=PASSIVE (unless that is set): OpenMP's spinning threads
made it 8x slower whenever other processes shared the 2 cores, while passive
waiting costs ~15% on idle ones. The peer runs in a subprocess of another
interpreter (--peer-python), so that torch never enters the project's
environment; without that flag, or when that interpreter cannot import torch
and diffusers, the peer is skipped. Its "1st call" time is the eager warm-up
call, the nearest thing it has to our compile time.

  python3 -m venv /tmp/peervenv && /tmp/peervenv/bin/pip install torch==2.13.0 diffusers
  python benchmarks/networks.py --quick --peer-python /tmp/peervenv/bin/python
  python benchmarks/networks.py --peer-python /tmp/peervenv/bin/python
  XLA_FLAGS=--xla_force_host_platform_device_count=2 \\
      python benchmarks/networks.py --quick --peer-python /tmp/peervenv/bin/python
  XLA_FLAGS=--xla_force_host_platform_device_count=2 \\
      python benchmarks/networks.py --peer-python /tmp/peervenv/bin/python

--quick runs configurations a and b with 3 timed calls; the full run a, b and c
with 5. `--configs` picks others (`ddpm`: the DDPM U-Net against diffusers'
DDPM port). Tables go to stdout, progress to stderr.
"""

import argparse
import functools
import json
import math
import os
import statistics
import subprocess
import sys
import time

# Each configuration: our network, its image shape (H, W, C), the time input it
# expects ('sigma' for the Fourier embedding, 'timestep' for the positional one)
# and the peer family that mirrors it (see _peer_blocks).
CONFIGS = {
    'a': dict(
        label='(a) NCSN++ small', model='ncsnpp', shape=(32, 32, 3), time='sigma',
        kwargs=dict(nf=32, ch_mult=(1, 2, 2), num_res_blocks=2, attn_resolutions=(8,),
                    dropout=0.1),
        peer='ncsnpp'),
    'b': dict(
        label='(b) DDPM++ nf=64', model='ncsnpp', shape=(32, 32, 3), time='timestep',
        kwargs=dict(embedding_type='positional', fir=False, progressive_input='none', nf=64,
                    ch_mult=(1, 2, 2, 2), num_res_blocks=2, attn_resolutions=(16,), dropout=0.1),
        peer='biggan'),
    'c': dict(
        label='(c) NCSN++ nf=64', model='ncsnpp', shape=(32, 32, 3), time='sigma',
        kwargs=dict(fir=True, embedding_type='fourier', progressive_input='residual', nf=64,
                    ch_mult=(1, 2, 2, 2), num_res_blocks=2, attn_resolutions=(16,), dropout=0.1),
        peer='ncsnpp'),
    'ddpm': dict(
        label='DDPM nf=64', model='ddpm', shape=(32, 32, 3), time='timestep',
        kwargs=dict(nf=64, ch_mult=(1, 2, 2, 2), num_res_blocks=2, attn_resolutions=(16,),
                    dropout=0.1),
        peer='ddpm'),
}

PEER_FAMILIES = {
    'ncsnpp': "Skip/AttnSkip blocks (diffusers' NCSN++ port: FIR BigGAN resampling, "
              'Fourier embedding, input/output skip paths)',
    'biggan': 'ResnetDownsample/ResnetUpsample + Attn blocks with resnet resampling '
              '(BigGAN blocks, nearest/average resampling), positional embedding',
    'ddpm': "Down/Up + Attn blocks with conv resampling (diffusers' DDPM port)",
}


def _log(*parts):
  print(*parts, file=sys.stderr, flush=True)


def _code_version() -> str:
  """The last commit that changed models/, '+dirty' when models/ has uncommitted changes."""
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  try:
    commit = subprocess.run(['git', 'log', '-1', '--format=%h', '--', 'models'], cwd=root,
                            check=True, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(['git', 'status', '--porcelain', 'models'], cwd=root, check=True,
                           capture_output=True, text=True).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    return 'unknown'
  return commit + ('+dirty' if dirty else '')


def _median_ips(batch: int, seconds: list[float]) -> float:
  return batch / statistics.median(seconds)


# ----------------------------------------------------------------------------- ours (JAX)


def _time_inputs(rng, kind: str, batch: int):
  """Conditioning of the right kind: sigma > 0 (log-uniform) or a timestep in [0, 999]."""
  import jax
  import jax.numpy as jnp
  if kind == 'sigma':
    return jnp.exp(jax.random.uniform(rng, (batch,), minval=math.log(0.01), maxval=math.log(50.)))
  return jax.random.uniform(rng, (batch,), minval=0.0, maxval=999.0)


def param_count(model, shape) -> int:
  """Parameters of `model` on images of `shape`, from shapes alone (no memory spent)."""
  import jax
  import jax.numpy as jnp
  x = jax.ShapeDtypeStruct((1, *shape), jnp.float32)
  t = jax.ShapeDtypeStruct((1,), jnp.float32)
  variables = jax.eval_shape(model.init, jax.random.key(0), x, t)
  return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(variables['params']))


def _compile(fn, args, **shardings):
  """(compile seconds, a call running the compiled fn on args to completion, the compiled
  program)."""
  import jax
  start = time.perf_counter()
  compiled = jax.jit(fn, **shardings).lower(*args).compile()
  seconds = time.perf_counter() - start
  return seconds, lambda: jax.block_until_ready(compiled(*args)), compiled


def prepare_ours(config: dict, *, batch: int, shard: bool) -> dict:
  """Parameter count, and per run (x1, sharded xN) compile times and compiled calls."""
  import jax
  import jax.numpy as jnp
  import numpy as np
  from jax.sharding import Mesh, NamedSharding
  from jax.sharding import PartitionSpec as P

  from models import get_model

  model = get_model(config['model'])(**config['kwargs'])
  shape = tuple(config['shape'])
  result = {'params': param_count(model, shape), 'runs': {}}

  keys = jax.random.split(jax.random.key(0), 5)
  x = jax.random.normal(keys[0], (batch, *shape), jnp.float32)
  target = jax.random.normal(keys[1], (batch, *shape), jnp.float32)
  t = _time_inputs(keys[2], config['time'], batch)
  params = jax.jit(model.init)(keys[3], x[:1], t[:1])['params']
  dropout_key = keys[4]

  def forward(params, x, t):
    return model.apply({'params': params}, x, t, train=False)

  def loss(params, x, t, target, key):
    out = model.apply({'params': params}, x, t, train=True, rngs={'dropout': key})
    return jnp.mean((out - target) ** 2)

  value_and_grad = jax.value_and_grad(loss)

  names = ['x1'] + ([f'x{jax.device_count()}'] if shard and jax.device_count() > 1 else [])
  for name in names:
    if name == 'x1':
      device = jax.devices()[0]
      p, xs, ts, ys, key = jax.device_put((params, x, t, target, dropout_key), device)
      fwd_sh, vg_sh = {}, {}
    else:
      mesh = Mesh(np.array(jax.devices()), ('data',))
      data, repl = NamedSharding(mesh, P('data')), NamedSharding(mesh, P())
      p, key = jax.device_put((params, dropout_key), repl)
      xs, ts, ys = jax.device_put((x, t, target), data)
      fwd_sh = dict(in_shardings=(repl, data, data), out_shardings=data)
      vg_sh = dict(in_shardings=(repl, data, data, data, repl), out_shardings=(repl, repl))
    _log(f'  ours {name}: compiling')
    compile_fwd, fwd, _ = _compile(forward, (p, xs, ts), **fwd_sh)
    compile_vg, vg, compiled_vg = _compile(value_and_grad, (p, xs, ts, ys, key), **vg_sh)
    result['runs'][name] = dict(compile_fwd=compile_fwd, compile_vg=compile_vg,
                                calls={'fwd': fwd, 'vg': vg}, compiled_vg=compiled_vg,
                                fwd=[], vg=[])
  return result


def _timed(call) -> float:
  start = time.perf_counter()
  call()
  return time.perf_counter() - start


def measure(ours: dict, peer, *, warmup: int, reps: int) -> None:
  """Times ours (every run) and the peer round-robin, call by call, so that the load of a
  shared machine falls on all alike; fills ours['runs'][name][phase] and peer.result."""
  for phase in ('fwd', 'vg'):
    _log(f'  timing {phase}')
    for i in range(warmup + reps):
      for run in ours['runs'].values():
        seconds = _timed(run['calls'][phase])
        if i >= warmup:
          run[phase].append(seconds)
      if peer is not None and peer.alive:
        seconds = peer.call(phase)
        if seconds is not None:
          if i == 0:
            peer.result[f'first_{phase}'] = seconds
          if i >= warmup:
            peer.result[phase].append(seconds)


# ----------------------------------------------------------------------------- the peer


def _peer_blocks(family: str, n_levels: int, attn_levels: list[int]):
  """diffusers block types (down, up) mirroring one of our network families."""
  if family == 'ncsnpp':
    down = ['AttnSkipDownBlock2D' if i in attn_levels else 'SkipDownBlock2D'
            for i in range(n_levels)]
    up = ['AttnSkipUpBlock2D' if i in attn_levels else 'SkipUpBlock2D'
          for i in reversed(range(n_levels))]
  elif family == 'biggan':
    down = ['AttnDownBlock2D' if i in attn_levels else 'ResnetDownsampleBlock2D'
            for i in range(n_levels)]
    up = ['AttnUpBlock2D' if i in attn_levels else 'ResnetUpsampleBlock2D'
          for i in reversed(range(n_levels))]
  elif family == 'ddpm':
    down = ['AttnDownBlock2D' if i in attn_levels else 'DownBlock2D' for i in range(n_levels)]
    up = ['AttnUpBlock2D' if i in attn_levels else 'UpBlock2D' for i in reversed(range(n_levels))]
  else:
    raise ValueError(f'unknown peer family {family!r}')
  return down, up


def _peer_kwargs(spec: dict, width: int) -> dict:
  """UNet2DModel arguments for `spec` at base width `width`."""
  channels = [width * m for m in spec['ch_mult']]
  gcd = functools.reduce(math.gcd, channels)
  groups = max(g for g in range(1, 33) if gcd % g == 0)
  down, up = _peer_blocks(spec['family'], len(channels), spec['attn_levels'])
  resample = {'biggan': 'resnet', 'ddpm': 'conv'}.get(spec['family'], 'conv')
  height, _, in_channels = spec['shape']
  kwargs = dict(
      sample_size=height, in_channels=in_channels, out_channels=in_channels,
      down_block_types=tuple(down), up_block_types=tuple(up),
      block_out_channels=tuple(channels), layers_per_block=spec['num_res_blocks'],
      dropout=spec['dropout'], attention_head_dim=None, norm_num_groups=groups, norm_eps=1e-6,
      downsample_type=resample, upsample_type=resample, act_fn='silu')
  if spec['time'] == 'sigma':
    kwargs.update(time_embedding_type='fourier', mid_block_scale_factor=math.sqrt(2.0))
  else:  # our sinusoidal embedding: sin first, frequencies over half - 1
    kwargs.update(time_embedding_type='positional', flip_sin_to_cos=False, freq_shift=1)
  return kwargs


def _peer_match_width(spec: dict):
  """The base width whose UNet2DModel comes closest to our parameter count (built on 'meta')."""
  import torch
  from diffusers import UNet2DModel
  nf, target = spec['nf'], spec['target_params']
  best = None
  for width in range(max(4, (nf * 3) // 4), nf * 3 // 2 + 1, 2):
    try:
      with torch.device('meta'):
        model = UNet2DModel(**_peer_kwargs(spec, width))
    except (ValueError, RuntimeError, AssertionError):
      continue  # a GroupNorm whose channels the group count does not divide
    count = sum(p.numel() for p in model.parameters())
    rank = (abs(count / target - 1.0), abs(width - nf))
    if best is None or rank < best[0]:
      best = (rank, width, count)
  if best is None:
    raise ValueError(f'no UNet2DModel width fits {spec}')
  return best[1], best[2]


def peer_worker() -> None:
  """The peer's side, in the peer interpreter, speaking JSON lines on stdin/stdout.

  The first line sets it up (spec, batch, threads, ...) and is answered with the model's
  description; then each {"op": "fwd"} or {"op": "vg"} runs one call and is answered with
  its {"seconds": ...}; {"op": "quit"} ends it.
  """
  def reply(obj):
    print(json.dumps(obj), flush=True)

  try:
    import diffusers
    import numpy as np
    import torch
    from diffusers import UNet2DModel
    diffusers.utils.logging.set_verbosity_error()

    request = json.loads(sys.stdin.readline())
    torch.set_num_threads(request['threads'])
    torch.set_flush_denormal(request['flush_denormal'])
    torch.manual_seed(0)
    spec, batch = request['spec'], request['batch']
    width, count = _peer_match_width(spec)
    kwargs = _peer_kwargs(spec, width)
    model = UNet2DModel(**kwargs)

    height, width_px, channels = spec['shape']
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((batch, channels, height, width_px), np.float32))
    target = torch.randn_like(x)
    if spec['time'] == 'sigma':
      sigma = np.exp(rng.uniform(math.log(0.01), math.log(50.0), batch))
      t = torch.from_numpy(sigma.astype(np.float32))
    else:
      t = torch.from_numpy(rng.uniform(0.0, 999.0, batch).astype(np.float32))
    if request['channels_last']:
      model = model.to(memory_format=torch.channels_last)
      x = x.to(memory_format=torch.channels_last)
      target = target.to(memory_format=torch.channels_last)
  except Exception as e:  # noqa: BLE001 -- reported to the parent, which goes on without a peer
    reply({'error': f'{type(e).__name__}: {e}'})
    return

  def forward():
    model.eval()
    with torch.no_grad():
      return model(x, t).sample

  def forward_backward():
    model.train()
    model.zero_grad(set_to_none=True)
    loss = torch.mean((model(x, t).sample - target) ** 2)
    loss.backward()
    return loss

  reply(dict(torch=torch.__version__, diffusers=diffusers.__version__,
             threads=torch.get_num_threads(), params=count,
             block_out_channels=list(kwargs['block_out_channels']),
             norm_num_groups=kwargs['norm_num_groups'],
             down_block_types=list(kwargs['down_block_types'])))
  calls = {'fwd': forward, 'vg': forward_backward}
  for line in sys.stdin:
    op = json.loads(line)['op']
    if op == 'quit':
      break
    reply({'seconds': _timed(calls[op])})


class Peer:
  """The peer worker in a subprocess of `python`: this file run with --peer-worker."""

  def __init__(self, python: str, request: dict):
    # OpenMP's idle threads spin by default: fastest on idle cores, but where other
    # processes share them torch's threads end up waiting on each other (8x slower seen
    # on 2 cores); passive waiting costs ~15% on idle cores. So: passive under load.
    self.wait_policy = os.environ.get('OMP_WAIT_POLICY') or (
        'PASSIVE' if os.getloadavg()[0] > os.cpu_count() + 0.5 else None)
    env = dict(os.environ)
    if self.wait_policy:
      env['OMP_WAIT_POLICY'] = self.wait_policy
    self.proc = subprocess.Popen([python, os.path.abspath(__file__), '--peer-worker'],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                 env=env)
    self.alive = True
    info = self._ask(request)
    self.result = {**info, 'fwd': [], 'vg': []} if info else {'error': self.error}
    self.result['wait_policy'] = self.wait_policy or 'default (spin)'

  def _ask(self, message: dict):
    try:
      self.proc.stdin.write(json.dumps(message) + '\n')
      self.proc.stdin.flush()
      while line := self.proc.stdout.readline():
        if line.startswith('{'):
          answer = json.loads(line)
          if 'error' not in answer:
            return answer
          self.error = answer['error']
          break
      else:
        self.error = f'peer worker exited ({self.proc.wait()})'
    except (BrokenPipeError, json.JSONDecodeError) as e:
      self.error = f'peer worker failed: {e}'
    self.alive = False
    return None

  def call(self, op: str) -> float | None:
    answer = self._ask({'op': op})
    if answer is None:
      self.result['error'] = self.error
      return None
    return answer['seconds']

  def close(self):
    if self.alive:
      try:
        self.proc.stdin.write(json.dumps({'op': 'quit'}) + '\n')
        self.proc.stdin.close()
      except BrokenPipeError:
        pass
    self.proc.wait()


def peer_spec(config: dict, target_params: int) -> dict:
  kw = config['kwargs']
  height = config['shape'][0]
  return dict(family=config['peer'], shape=list(config['shape']), time=config['time'],
              nf=kw['nf'], ch_mult=list(kw['ch_mult']), num_res_blocks=kw['num_res_blocks'],
              attn_levels=[i for i in range(len(kw['ch_mult']))
                           if height // 2**i in kw['attn_resolutions']],
              dropout=kw.get('dropout', 0.1), target_params=target_params)


def peer_available(python: str | None) -> tuple[bool, str]:
  if not python:
    return False, 'no --peer-python given'
  if not os.path.exists(python):
    return False, f'{python} does not exist'
  probe = subprocess.run([python, '-c', 'import torch, diffusers'], capture_output=True,
                         text=True, check=False)
  if probe.returncode != 0:
    last = (probe.stderr.strip().splitlines() or ['?'])[-1]
    return False, f'{python} cannot import torch and diffusers ({last})'
  return True, ''


# ----------------------------------------------------------------------------- tables


def _table(headers, rows) -> str:
  lines = ['| ' + ' | '.join(headers) + ' |', '|' + '---|' * len(headers)]
  lines += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
  return '\n'.join(lines)


def _fmt(value, spec='.1f'):
  return '-' if value is None else format(value, spec)


def report(results, *, batch: int, n_dev: int, peer_note: str) -> str:
  xn = f'x{n_dev}' if n_dev > 1 else None
  out = []

  rows = []
  for name, config, ours, peer in results:
    ok = peer and 'error' not in peer
    ratio = peer['params'] / ours['params'] if ok else None
    row = [name, config['label'], 'x'.join(map(str, config['shape'])), f"{ours['params']:,}",
           f"{peer['params']:,}" if ok else '-', _fmt(ratio, '.3f'),
           str(tuple(peer['block_out_channels'])) if ok else '-', f"{ours['load']:.2f}"]
    rows.append(row)
  out.append('### Parameters (peer: diffusers UNet2DModel, width matched to ours)\n')
  out.append(_table(['cfg', 'network', 'HxWxC', 'params ours', 'params peer', 'peer/ours',
                     'peer block_out_channels', 'load avg at start'], rows))

  rows = []
  for name, config, ours, peer in results:
    ok = peer and 'error' not in peer
    r1, rn = ours['runs']['x1'], ours['runs'].get(xn) if xn else None
    row = [name, _fmt(r1['compile_fwd']), _fmt(r1['compile_vg'])]
    if xn:
      row += [_fmt(rn['compile_fwd']), _fmt(rn['compile_vg'])]
    row += [_fmt(peer.get('first_fwd'), '.2f') if ok else '-',
            _fmt(peer.get('first_vg'), '.2f') if ok else '-']
    rows.append(row)
  headers = ['cfg', 'compile fwd s', 'compile fwd+bwd s']
  if xn:
    headers += [f'compile fwd s ({xn})', f'compile fwd+bwd s ({xn})']
  headers += ['peer 1st call fwd s', 'peer 1st call fwd+bwd s']
  out.append('\n### Compile time (jit lower + compile; the peer is eager: its first call)\n')
  out.append(_table(headers, rows))

  for key, what in [('fwd', 'forward (train=False; peer: eval + no_grad)'),
                    ('vg', 'forward+backward (value_and_grad of an MSE, dropout on)')]:
    rows = []
    for name, config, ours, peer in results:
      ok = peer and 'error' not in peer
      ours1 = _median_ips(batch, ours['runs']['x1'][key])
      oursn = _median_ips(batch, ours['runs'][xn][key]) if xn else None
      theirs = _median_ips(batch, peer[key]) if ok else None
      row = [name, _fmt(ours1)]
      if xn:
        row.append(_fmt(oursn))
      row += [_fmt(theirs), _fmt(ours1 / theirs if ok else None, '.2f')]
      if xn:
        row.append(_fmt(oursn / theirs if ok else None, '.2f'))
      rows.append(row)
    headers = ['cfg', 'ours x1 img/s'] + ([f'ours {xn} img/s'] if xn else [])
    headers += ['peer img/s', 'ours x1 / peer'] + ([f'ours {xn} / peer'] if xn else [])
    out.append(f'\n### Throughput, {what}: batch {batch}, median of timed calls\n')
    out.append(_table(headers, rows))

  notes = [f'\nPeer: {peer_note}']
  for name, config, ours, peer in results:
    if peer and 'error' not in peer:
      groups = ('' if config['peer'] == 'ncsnpp'  # the Skip blocks pick their own groups
                else f"; GroupNorm groups {peer['norm_num_groups']}")
      notes.append(f"- {name}: {PEER_FAMILIES[config['peer']]}; down blocks "
                   f"{', '.join(peer['down_block_types'])}{groups}; OpenMP wait policy "
                   f"{peer['wait_policy']}")
    elif peer:
      notes.append(f"- {name}: {peer['error']}")
  out.append('\n'.join(notes))
  return '\n'.join(out) + '\n'


# ----------------------------------------------------------------------------- main


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--quick', action='store_true',
                      help='configurations a and b, 3 timed calls (default: a, b, c and 5)')
  parser.add_argument('--configs', nargs='+', choices=sorted(CONFIGS), help='configurations to run')
  parser.add_argument('--batch', type=int, default=16, help='images per call')
  parser.add_argument('--reps', type=int, help='timed calls per measurement (after 1 warm-up)')
  parser.add_argument('--peer-python', help='interpreter with torch and diffusers for the peer')
  parser.add_argument('--peer-threads', type=int, default=os.cpu_count(),
                      help='torch.set_num_threads for the peer (default: the number of cores)')
  parser.add_argument('--peer-channels-last', action='store_true',
                      help='run the peer in channels_last memory format')
  parser.add_argument('--peer-keep-denormals', action='store_true',
                      help='do not flush denormals to zero in the peer')
  parser.add_argument('--no-shard', action='store_true',
                      help='skip the run sharded over several host devices')
  parser.add_argument('--peer-worker', action='store_true', help=argparse.SUPPRESS)
  args = parser.parse_args()

  if args.peer_worker:
    peer_worker()
    return

  import jax

  configs = args.configs or (['a', 'b'] if args.quick else ['a', 'b', 'c'])
  reps = args.reps or (3 if args.quick else 5)
  warmup = 1
  n_dev = 1 if args.no_shard else jax.device_count()
  if args.batch % n_dev:
    parser.error(f'--batch {args.batch} is not divisible by {n_dev} devices')
  has_peer, why = peer_available(args.peer_python)

  results = []
  peer_versions = None
  load_start = os.getloadavg()[0]
  start = time.perf_counter()
  for name in configs:
    config = CONFIGS[name]
    _log(f"{name}: {config['label']}")
    load = os.getloadavg()[0]
    ours = prepare_ours(config, batch=args.batch, shard=n_dev > 1)
    peer = None
    if has_peer:
      _log('  peer: starting')
      peer = Peer(args.peer_python, dict(
          spec=peer_spec(config, ours['params']), batch=args.batch,
          threads=args.peer_threads, channels_last=args.peer_channels_last,
          flush_denormal=not args.peer_keep_denormals))
    try:
      measure(ours, peer, warmup=warmup, reps=reps)
    finally:
      if peer is not None:
        peer.close()
    if peer is not None and 'error' not in peer.result:
      peer_versions = (peer.result['torch'], peer.result['diffusers'], peer.result['threads'])
    ours['load'] = load
    results.append((name, config, ours, peer.result if peer is not None else None))
  elapsed = time.perf_counter() - start

  if has_peer and peer_versions:
    note = (f'torch {peer_versions[0]} (CPU, {peer_versions[2]} threads), diffusers '
            f'{peer_versions[1]}, {"channels_last" if args.peer_channels_last else "NCHW"}, '
            f'denormals {"kept" if args.peer_keep_denormals else "flushed"}')
  elif has_peer:
    note = 'failed (see the rows below)'
  else:
    note = f'skipped ({why})'
  sharded = f', sharded runs over {n_dev}' if n_dev > 1 else ''
  load_end = os.getloadavg()[0]
  print(f'## Networks on CPU: batch {args.batch}, {os.cpu_count()} cores, jax {jax.__version__} '
        f'({jax.device_count()} host device(s){sharded}), models/ at {_code_version()}, '
        f'{warmup} warm-up + {reps} timed calls; load average {load_start:.2f} at start, '
        f'{load_end:.2f} at end; {elapsed:.0f} s in all\n')
  if max(load_start, load_end, *(r[2]['load'] for r in results)) > os.cpu_count() + 1:
    print(f'**The load average exceeded the {os.cpu_count()} cores: other processes shared the '
          'CPUs; the numbers are slower and noisier than on an idle machine.**\n')
  print(report(results, batch=args.batch, n_dev=n_dev, peer_note=note))


if __name__ == '__main__':
  main()
