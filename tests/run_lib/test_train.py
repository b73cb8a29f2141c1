"""Training a tiny digits model through the job: what it writes, its pinned losses,
bit-identical resumes (after kill -9 too, and from a workdir written before the job was
rebuilt), the same losses on 1, 4 devices and 2 hosts, and a run that goes non-finite."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

import run_lib
from tests.run_lib import jobs

pytestmark = pytest.mark.usefixtures('digits_classifier_trained_once')

ROOT = jobs.ROOT
# configs/digits/ve.py:tiny trained for 2 steps (n_iters=2, no snapshot grids) by scorelab
# at 2a6c098, before the job was rebuilt around run_lib.build: its config.json, log and
# checkpoint as that version wrote them.
BEFORE_THE_JOB = ROOT / 'tests' / 'testdata' / 'digits_ve_tiny_v0'


def _params(state) -> list[np.ndarray]:
  return [np.asarray(leaf) for leaf in jax.tree.leaves(state.params)]


def test_train_writes_checkpoints_logs_and_sample_grids(reference):
  workdir, state = reference
  assert int(state.step) == 6
  assert sorted(int(p.name) for p in (workdir / 'checkpoints').iterdir() if p.name.isdigit()) == [
      2, 4, 6]
  assert sorted(jobs.losses(workdir)) == [1, 2, 3, 4, 5, 6]
  assert list((workdir / 'tensorboard').glob('events.out.tfevents.*'))
  assert (workdir / 'samples' / 'step_00000006.png').exists()
  assert json.loads((workdir / 'config.json').read_text())['training']['n_iters'] == 6
  assert json.loads((workdir / 'finished.json').read_text()) == {
      'step': 6, 'n_iters': 6, 'reason': 'n_iters'}


# The tiny VE digits run's losses before the job trained tasks (tasks.Diffusion, parameters
# as named trees): that change reproduced them, and every parameter, bit for bit on this
# machine (4 CPU devices). The tolerance only allows for another CPU's float rounding.
LOSSES_BEFORE_TASKS = [61.31703186035156, 64.80130767822266, 57.44453811645508,
                       69.41082000732422, 59.408164978027344, 67.75634765625]
TEST_LOSSES_BEFORE_TASKS = [61.555442810058594, 62.19342041015625, 64.918701171875,
                            63.65620422363281, 64.79695892333984, 60.176021575927734]


def test_the_diffusion_task_reproduces_the_losses_of_the_job_before_tasks(reference):
  workdir, state = reference
  lines = [json.loads(line) for line in (workdir / 'log.jsonl').read_text().splitlines()]
  np.testing.assert_allclose([line['loss'] for line in lines if 'loss' in line],
                             LOSSES_BEFORE_TASKS, rtol=1e-5)
  np.testing.assert_allclose([line['test_loss'] for line in lines if 'test_loss' in line],
                             TEST_LOSSES_BEFORE_TASKS, rtol=1e-5)
  assert list(state.params) == ['score'] and list(state.ema_params) == ['score']


def test_resume_gives_bit_identical_parameters(reference, tmp_path, data_dir):
  jobs.train(jobs.tiny_config(data_dir, n_iters=3), tmp_path)
  resumed = jobs.train(jobs.tiny_config(data_dir, n_iters=6), tmp_path)
  for a, b in zip(_params(resumed), _params(reference[1]), strict=True):
    np.testing.assert_array_equal(a, b)


def test_a_workdir_written_before_the_job_was_rebuilt_resumes_and_samples(reference, tmp_path,
                                                                         data_dir):
  workdir = tmp_path / 'before'
  shutil.copytree(BEFORE_THE_JOB, workdir)
  np.testing.assert_allclose(list(jobs.losses(workdir).values()), LOSSES_BEFORE_TASKS[:2],
                             rtol=1e-5)
  config = jobs.tiny_config(data_dir, n_iters=4, snapshot_sampling=False)
  job = run_lib.build(config, str(workdir))
  before = job.restore()
  # Its checkpoint is the reference run's at step 2, and steps 3 and 4 continue it as the
  # reference did (to another CPU's float rounding, as the pinned losses: on the machine and
  # XLA flags that wrote it, bit for bit).
  reference_job = run_lib.build(jobs.tiny_config(data_dir, n_iters=6), str(reference[0]))
  for ours, theirs in ((before, reference_job.restore(2)),
                       (run_lib.train(job), reference_job.restore(4))):
    assert int(ours.step) == int(theirs.step)
    for a, b in zip(_params(ours), _params(theirs), strict=True):
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
  images = run_lib.sample(job)
  assert images.shape == (4, 8, 8, 1) and images.dtype == np.uint8


def test_kill_9_at_any_moment_then_relaunch_matches_an_uninterrupted_run(reference, tmp_path,
                                                                       data_dir):
  # The session's XLA_FLAGS (conftest: 4 devices, its optimisation level), as the reference.
  process = subprocess.Popen(
      [sys.executable, 'main.py', f'--config={jobs.TINY}', f'--workdir={tmp_path}',
       f'--config.data.data_dir={data_dir}', '--config.training.n_iters=1000'],
      cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.monotonic() + 240
  checkpoints = tmp_path / 'checkpoints'
  while time.monotonic() < deadline and not (checkpoints.exists() and any(
      p.name.isdigit() and int(p.name) >= 3 for p in checkpoints.iterdir())):
    time.sleep(0.05)
  process.send_signal(signal.SIGKILL)  # possibly in the middle of writing a checkpoint
  process.wait()
  resumed = jobs.train(jobs.tiny_config(data_dir, n_iters=6), tmp_path)
  for a, b in zip(_params(resumed), _params(reference[1]), strict=True):
    np.testing.assert_array_equal(a, b)


def test_one_and_four_devices_give_the_same_losses(reference, tmp_path, data_dir):
  # A relative workdir, as the README's commands give (orbax wants absolute paths).
  result = jobs.run_main(os.path.relpath(tmp_path, ROOT), f'--config.data.data_dir={data_dir}',
                         '--config.training.n_iters=6', '--config.training.snapshot_sampling=False',
                         devices=1)
  assert result.returncode == 0, result.stderr[-2000:]
  one, four = jobs.losses(tmp_path), jobs.losses(reference[0])
  assert sorted(one) == sorted(four)
  np.testing.assert_allclose([one[s] for s in sorted(one)], [four[s] for s in sorted(four)],
                             rtol=1e-5)


def test_two_hosts_train_sample_and_evaluate_as_one_host_does(reference, tmp_path, data_dir):
  # Two processes of two CPU devices each, joined by jax.distributed: the same losses
  # as one process of four, and every host gets the same samples and metrics.
  # The digits feature classifier, the same on every host (trained on each host's CPU,
  # deterministically: tests/metrics), as this process trained it; the hosts compute the
  # reference features together.
  evaluation = run_lib.Evaluation(run_lib.build(jobs.tiny_config(data_dir), str(tmp_path)))
  evaluation.features()
  (tmp_path / 'eval' / 'reference_features.npz').unlink()
  with socket.socket() as s:
    s.bind(('localhost', 0))
    port = s.getsockname()[1]
  env = {**os.environ, 'PYTHONPATH': str(ROOT)}
  processes = [subprocess.Popen([sys.executable, 'tests/multihost_worker.py', str(i), str(port),
                                 str(tmp_path), data_dir], cwd=ROOT, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for i in range(2)]
  outputs = [p.communicate(timeout=300) for p in processes]
  for p, (_, err) in zip(processes, outputs, strict=True):
    assert p.returncode == 0, err[-3000:]
  results = [json.loads(next(line for line in out.splitlines() if line.startswith('result '))[7:])
             for out, _ in outputs]
  for result in results:  # the one measurement that may differ
    assert result['metrics'].pop('seconds') > 0
  assert results[0]['devices'] == 4 and results[0] == results[1]
  losses, reference_losses = jobs.losses(tmp_path), jobs.losses(reference[0])
  np.testing.assert_allclose([losses[s] for s in sorted(reference_losses)],
                             [reference_losses[s] for s in sorted(reference_losses)], rtol=1e-5)


def test_non_finite_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(
    tiny_workdir, data_dir):
  config = jobs.tiny_config(data_dir, n_iters=30)
  config.optim.lr = 1e30
  with pytest.raises(run_lib.USER_ERRORS) as raised:  # what main.py prints in one line
    jobs.train(config, tiny_workdir)
  assert 'non-finite' in str(raised.value) and 'at step' in str(raised.value)
  steps = sorted(int(p.name) for p in (tiny_workdir / 'checkpoints').iterdir()
                 if p.name.isdigit())
  state = run_lib.build(jobs.tiny_config(data_dir), str(tiny_workdir)).restore(steps[-1])
  assert all(np.all(np.isfinite(p)) for p in _params(state))


def test_a_time_budget_stops_training_with_a_checkpoint_and_says_so(tmp_path, data_dir, capsys):
  config = jobs.tiny_config(data_dir, n_iters=1000, max_minutes=1e-9, snapshot_sampling=False)
  state = jobs.train(config, tmp_path)
  assert int(state.step) == 1
  assert run_lib.build(config, str(tmp_path)).manager.latest_step() == 1
  assert json.loads((tmp_path / 'finished.json').read_text()) == {
      'step': 1, 'n_iters': 1000, 'reason': 'max_minutes'}
  assert 'training.max_minutes=1e-09, ended it before training.n_iters=1000' in (
      capsys.readouterr().out)


def test_the_progress_bar_shows_the_budget_left_not_an_eta_to_n_iters(tmp_path):
  log = run_lib.io.Log(tmp_path, 0, 1000, max_minutes=10.0)
  log.advance(3)
  assert log.bar.n == 3 and log.postfix['budget left'] in ('9:59', '10:00')
  assert 'budget left' in str(log.bar) and '<' not in str(log.bar)  # tqdm's ETA is 'a<b'
  log.close()
  (tmp_path / 'plain').mkdir()
  plain = run_lib.io.Log(tmp_path / 'plain', 0, 1000)
  plain.advance(3)
  assert 'budget left' not in str(plain.bar) and '<' in str(plain.bar)
  plain.close()

