"""--mode sweep: a grid of config overrides, each point trained and/or evaluated, in a table.

A sweep file is a config file with a second function, big_vision's pattern:

  def get_config(): ...        # the base config
  def sweep(): return [{'sampling.method': 'ddim', 'sampling.n_steps': 10}, ...]

Points that change only sampling.* and eval.* keys evaluate the checkpoint already in
the workdir; any other point trains into workdir/sweep/<point>/ first (resuming if it
was preempted) and is evaluated there. Each point's metrics go to
workdir/sweep/points/<point>.json, so a re-run skips finished points;
`sweep.index=K` runs only point K (one task of a cluster array job), and a plain run
runs whatever is missing and writes workdir/sweep/results.{md,csv} and a plot of
`sweep.metric` against `sweep.x`.
"""

import csv
import hashlib
import json
import pathlib
import re
from collections.abc import Callable, Sequence
from typing import Any

import jax

from run_lib import io
from run_lib.evaluate import Evaluation
from run_lib.job import Job
from run_lib.train import train

EVAL_ONLY_PREFIXES = ('sampling.', 'eval.', 'sweep.')
COLUMNS = ('nfe', 'fd', 'kid', 'is', 'accuracy', 'bpd_ode', 'bpd_vlb', 'test_loss', 'seconds')

Point = dict[str, Any]
Variants = Callable[[Point, str], Job]
"""variants(point, workdir) -> the job of the sweep's config under the point's overrides
(run_lib.builder.Variants, which also has check(point))."""


def point_name(point: Point) -> str:
  """A file name made from the overrides themselves, so it survives reordering the sweep."""
  slug = ','.join(f'{k}={v}' for k, v in sorted(point.items()))
  slug = re.sub(r'[^A-Za-z0-9._=,+-]', '_', slug) or 'base'
  if len(slug) > 120:
    slug = slug[:100] + '-' + hashlib.sha1(slug.encode()).hexdigest()[:12]
  return slug


def check_points(points: Any) -> list[Point]:
  if not isinstance(points, Sequence) or not points or not all(
      isinstance(p, dict) and all(isinstance(k, str) for k in p) for p in points):
    raise ValueError('sweep() must return a non-empty list of {"dotted.key": value} dicts')
  names = [point_name(p) for p in points]
  if len(set(names)) != len(names):
    raise ValueError('sweep() lists the same point twice')
  return list(points)


def trains(point: Point) -> bool:
  return not all(key.startswith(EVAL_ONLY_PREFIXES) for key in point)


def run_point(variants: Variants, workdir: pathlib.Path, point: Point,
              out: pathlib.Path) -> dict[str, Any]:
  """Trains (if the point needs it) and evaluates one point; writes and returns its JSON."""
  where = workdir / 'sweep' / point_name(point) if trains(point) else workdir
  job = variants(point, str(where))
  if trains(point):
    train(job)
  state = job.require_state()
  metrics = Evaluation(job).metrics(state.ema_params, int(state.step))
  record = {'point': point, 'workdir': str(where), **metrics}
  if jax.process_index() == 0:
    io.write_json(out, record)
  return record


def run(job: Job, make_points: Callable[[], Any], variants: Variants) -> list[dict[str, Any]]:
  """Runs the sweep of the job's workdir (or its point sweep.index) and assembles the
  results; each point is the job `variants` builds of it.

  Returns:
    The records of the points run or found, in the sweep's order.
  """
  root = job.workdir
  points = check_points(make_points())
  for point in points:  # bad keys fail before anything runs
    variants.check(point)
  index = job.sweep.index
  if index >= len(points):
    raise ValueError(f'sweep.index={index} but the sweep has {len(points)} points (0-'
                     f'{len(points) - 1})')
  chosen = range(len(points)) if index < 0 else [index]
  out_dir = root / 'sweep' / 'points'
  out_dir.mkdir(parents=True, exist_ok=True)
  records = []
  for i in chosen:
    out = out_dir / f'{point_name(points[i])}.json'
    if out.exists():
      records.append(json.loads(out.read_text()))
      continue
    if jax.process_index() == 0:
      print(f'sweep point {i + 1}/{len(points)}: {points[i]}')
    record = run_point(variants, root, points[i], out)
    records.append(record)
    if jax.process_index() == 0:
      print(f'  -> {out}: ' + ', '.join(f'{k}={record[k]:.4g}' for k in COLUMNS
                                         if isinstance(record.get(k), (int, float))))
  if index < 0 and jax.process_index() == 0:
    write_results(root / 'sweep', points, records, metric=job.sweep.metric, x_key=job.sweep.x)
  return records


def _format(value: Any) -> str:
  if isinstance(value, float):
    return f'{value:.4g}'
  return '' if value is None else str(value)


def write_results(out: pathlib.Path, points: list[Point], records: list[dict[str, Any]], *,
                  metric: str, x_key: str) -> None:
  """results.md, results.csv (one row per point) and results_<metric>.png."""
  keys = sorted({k for p in points for k in p})
  header = keys + list(COLUMNS)
  rows = [[r['point'].get(k) for k in keys] + [r.get(c) for c in COLUMNS] for r in records]
  with open(out / 'results.csv', 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(header)
    writer.writerows([[_format(v) for v in row] for row in rows])
  lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  lines += ['| ' + ' | '.join(_format(v) for v in row) + ' |' for row in rows]
  (out / 'results.md').write_text('\n'.join(lines) + '\n')
  written = [out / 'results.md', out / 'results.csv']
  plot = plot_results(out / f'results_{metric}.png', records, metric=metric, x_key=x_key)
  if plot:
    written.append(plot)
  print('sweep results: ' + ', '.join(str(p) for p in written))


def plot_results(path: pathlib.Path, records: list[dict[str, Any]], *,
                 metric: str, x_key: str) -> pathlib.Path | None:
  """metric against x_key, a swept key or a metric such as 'nfe' ('': each point's last
  key). A line joins the points that differ only in their last key (the one a sweep
  file steps through last); None when there is nothing numeric to plot."""

  def value(record, key):
    point = record['point']
    key = key or (list(point)[-1] if point else '')
    return point[key] if key in point else record.get(key)

  def label(record):
    point = record['point']
    return ', '.join(f'{k.split(".")[-1]}={v}' for k, v in list(point.items())[:-1])

  usable = [r for r in records if isinstance(value(r, x_key), (int, float))
            and isinstance(r.get(metric), (int, float))]
  if not usable:
    return None
  import matplotlib  # imported here: only sweeps draw plots
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt

  groups: dict[str, list] = {}
  for r in usable:
    groups.setdefault(label(r), []).append((value(r, x_key), r[metric]))
  figure, axes = plt.subplots(figsize=(8, 5))
  for name, xy in groups.items():
    xs, ys = zip(*sorted(xy), strict=True)
    axes.plot(xs, ys, marker='o', label=name or None)
  xs = [x for xy in groups.values() for x, _ in xy]
  if min(xs) > 0 and max(xs) / min(xs) >= 10:
    axes.set_xscale('log')
  axes.set_xlabel(x_key or 'the last swept key')
  axes.set_ylabel(metric)
  axes.grid(True, which='both', alpha=0.3)
  if any(groups):
    axes.legend(fontsize=7)
  figure.tight_layout()
  figure.savefig(path, dpi=120)
  plt.close(figure)
  return path
