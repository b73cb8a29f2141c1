"""Where a network's forward+backward spends its time on CPU: an XLA profile, per op.

Runs the program `benchmarks/networks.py` times (value_and_grad of an MSE over the
parameters, dropout on, one device) under `jax.profiler.trace`, reads the trace back
with `jax.profiler.ProfileData` and sums the time of every XLA op (thunk) by kind:
forward, input-gradient and weight-gradient convolutions (told apart by the window of
the convolution an op runs and by its metadata), dots, fusions (elementwise chains,
GroupNorm, softmax), copies/transposes and the rest. It also prints CPU time / wall
time (how many of the cores the program keeps busy) and the slowest single ops with
their shapes.

  python benchmarks/profile_step.py --configs a b

The kinds are read from XLA's default YNNPACK fusions (`ynn_fusion.*`). With Eigen's
convolutions (XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type=-individual_convolution)
most of their work runs in Eigen's pool under no op name and is missing from the sums.
"""

import argparse
import collections
import os
import re
import sys
import tempfile
import time

import jax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from networks import CONFIGS, prepare_ours  # noqa: E402


def _ops_of(hlo_text: str) -> dict[str, dict]:
  """name -> {opcode, shape, op_name, inner} of every instruction of the optimised HLO;
  `inner`: the convolutions and dots of the computation a fusion calls (their lines)."""
  ops, computations, current = {}, collections.defaultdict(list), None
  pattern = re.compile(r'^\s*(?:ROOT )?%?([\w.\-]+) = (\(.*?\)|\S+) ([\w\-]+)\(')
  for line in hlo_text.splitlines():
    header = re.match(r'^(?:ENTRY )?%?([\w.\-]+) .*\{$', line)
    if header:
      current = header.group(1)
      continue
    match = pattern.match(line)
    if match:
      name, shape, opcode = match.groups()
      op_name = re.search(r'op_name="([^"]*)"', line)
      calls = re.search(r'calls=%?([\w.\-]+)', line)
      ops[name] = {'name': name, 'opcode': opcode, 'shape': shape,
                   'calls': calls and calls.group(1),
                   'op_name': op_name.group(1) if op_name else ''}
      if opcode in ('convolution', 'dot'):
        computations[current].append((opcode, line))
  for op in ops.values():
    op['inner'] = computations.get(op['calls'], []) if op['opcode'] == 'fusion' else []
  return ops


def _kind(op: dict) -> str:
  """What an op computes: the convolutions split into forward, input gradient and weight
  gradient (XLA writes the last as a convolution whose window is the whole image)."""
  inner = op['inner'] or ([(op['opcode'], '')] if op['opcode'] in ('convolution', 'dot') else [])
  convolutions = [line for opcode, line in inner if opcode == 'convolution']
  if convolutions:
    window = re.search(r'window=\{size=(\d+)x(\d+)', convolutions[0])
    if window and int(window.group(1)) > 3:
      return 'conv weight-gradient'
    names = ' '.join(convolutions) + op['op_name']
    return 'conv input-gradient' if 'transpose(' in names else 'conv forward'
  if inner:
    return 'dot (dense, attention, NIN)'
  if op['opcode'] in ('copy', 'transpose') or re.search('copy|transpose', op['name']):
    return 'copy / transpose'
  if op['opcode'] == 'fusion':
    return 'fusion (elementwise, norms, reductions)'
  return f"other ({op['opcode']})"


def profile(config_name: str, *, batch: int, steps: int) -> None:
  config = CONFIGS[config_name]
  run = prepare_ours(config, batch=batch, shard=False)['runs']['x1']
  call = run['calls']['vg']
  for _ in range(2):
    call()
  ops = _ops_of(run['compiled_vg'].as_text())

  with tempfile.TemporaryDirectory() as log_dir:
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    with jax.profiler.trace(log_dir):
      for _ in range(steps):
        call()
    cpu, wall = time.process_time() - cpu_start, time.perf_counter() - wall_start
    path = next(os.path.join(root, f) for root, _, files in os.walk(log_dir)
                for f in files if f.endswith('.xplane.pb'))
    data = jax.profiler.ProfileData.from_file(path)

  per_kind, per_op = collections.Counter(), collections.Counter()
  total = 0
  for plane in data.planes:
    if not plane.name.startswith('/host:CPU'):
      continue
    for line in plane.lines:
      for event in line.events:
        op = ops.get(dict(event.stats).get('hlo_op', ''))
        if op is None:
          continue
        per_kind[_kind(op)] += event.duration_ns
        per_op[event.name] += event.duration_ns
        total += event.duration_ns
  print(f"\n### {config['label']}: forward+backward, batch {batch}, {steps} profiled calls")
  print(f'wall {wall / steps * 1e3:.0f} ms per call; CPU time / wall {cpu / wall:.2f} '
        f'(cores busy); ops sum to {total / 1e6 / steps:.0f} ms per call (threads overlap)\n')
  print('| op kind | ms per call | share of op time |')
  print('|---|---|---|')
  for kind, ns in per_kind.most_common():
    print(f'| {kind} | {ns / 1e6 / steps:.1f} | {ns / total:.0%} |')
  print('\nSlowest ops (ms per call):')
  for name, ns in per_op.most_common(12):
    print(f"- {name} {ops[name]['opcode']} {ops[name]['shape']} "
          f"[{_kind(ops[name])}]: {ns / 1e6 / steps:.1f}")


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--configs', nargs='+', default=['a', 'b'], choices=sorted(CONFIGS))
  parser.add_argument('--batch', type=int, default=16)
  parser.add_argument('--steps', type=int, default=3)
  args = parser.parse_args()
  flags = os.environ.get('XLA_FLAGS', '')
  print(f'# jax {jax.__version__}, {os.cpu_count()} cores, XLA_FLAGS={flags!r}')
  for name in args.configs:
    profile(name, batch=args.batch, steps=args.steps)


if __name__ == '__main__':
  main()
