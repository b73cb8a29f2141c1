"""--mode sweep: sampler points evaluate the workdir's checkpoint, others train first; a
point at a time (sweep.index), then the table and plot; a re-run finds every point."""

import re

import pytest
from PIL import Image

import run_lib
from tests.run_lib import jobs

pytestmark = pytest.mark.usefixtures('digits_classifier_trained_once')


def test_sweep_evaluates_sampler_points_trains_the_others_and_resumes(tiny_workdir, data_dir):
  config = jobs.tiny_config(data_dir)
  config.eval.metrics = ('loss', 'fid')
  config.sweep.x = 'sampling.n_steps'
  points = [{'sampling.method': 'ddim', 'sampling.n_steps': 2},
            {'sampling.method': 'ddim', 'sampling.n_steps': 4},
            {'sampling.method': 'unipc', 'sampling.n_steps': 3},
            {'training.n_iters': 3}]

  def sweep(config, make_points):
    return run_lib.sweep(run_lib.build(config, str(tiny_workdir)), make_points,
                         run_lib.Variants(config))

  with pytest.raises(ValueError, match="unknown config key 'sampling.nsteps'"):
    sweep(config, lambda: points + [{'sampling.nsteps': 3}])
  assert not (tiny_workdir / 'sweep' / 'points').exists() or not list(
      (tiny_workdir / 'sweep' / 'points').iterdir())
  with pytest.raises(ValueError, match=re.escape('sampling.* (ddim): n_steps must be a '
                                                 'positive integer, got 0')):
    sweep(config, lambda: [{'sampling.method': 'ddim', 'sampling.n_steps': 0}])

  config.sweep.index = 2  # one task of an array job: only that point
  [record] = sweep(config, lambda: points)
  assert record['point'] == points[2] and record['nfe'] == 3 and record['step'] == 2
  assert len(list((tiny_workdir / 'sweep' / 'points').iterdir())) == 1

  config.sweep.index = -1
  records = sweep(config, lambda: points)
  assert [r['point'] for r in records] == points
  assert [r['nfe'] for r in records[:3]] == [2, 4, 3]
  assert records[2] == record  # found, not run again
  assert records[3]['step'] == 3 and (tiny_workdir / 'sweep' / 'training.n_iters=3'
                                      / 'checkpoints').exists()
  out = tiny_workdir / 'sweep'
  table = (out / 'results.md').read_text().splitlines()
  assert table[0].startswith('| sampling.method | sampling.n_steps | training.n_iters | nfe | fd')
  assert len(table) == 2 + len(points)
  assert len((out / 'results.csv').read_text().splitlines()) == 1 + len(points)
  assert Image.open(out / 'results_fd.png').size[0] > 100
  stamps = {p.name: p.stat().st_mtime_ns for p in (out / 'points').iterdir()}
  sweep(config, lambda: points)  # a re-run finds every point
  assert {p.name: p.stat().st_mtime_ns for p in (out / 'points').iterdir()} == stamps
