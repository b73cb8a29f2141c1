"""Training: the pure train step, its sharded jit, and the loop with checkpoints and logs."""

import functools
import os
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from absl import logging
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from run_lib import io
from run_lib.errors import JobError
from run_lib.job import FINISHED, TOKENIZER_FILE, Job
from run_lib.mesh import check_divisible
from run_lib.sample import draw, save_grid
from run_lib.state import TrainState, init_state

LossTermsOf = Callable[[dict, dict, jax.Array, jax.Array], dict[str, jax.Array]]
"""loss_terms_of(params, batch, rng, step) -> {'loss': what a task trains on, other terms}."""


def make_train_step(loss_terms_of: LossTermsOf, optimizer: optax.GradientTransformation, *,
                    ema_rate: float, frozen: tuple[str, ...] = ()) -> Callable:
  """The pure step train_step(state, batch, rng) -> (state, metrics) of a task's loss: every
  term it reports, and the gradient's norm. The `frozen` trees of params enter the loss
  but are neither differentiated nor updated (the optimiser's state is of the others)."""

  def train_step(state: TrainState, batch: dict, rng: jax.Array):
    fixed = {name: state.params[name] for name in frozen}
    trained = {name: tree for name, tree in state.params.items() if name not in frozen}

    def objective(trained):
      terms = loss_terms_of({**trained, **fixed}, batch, rng, state.step)
      return terms['loss'], terms

    (_, terms), grads = jax.value_and_grad(objective, has_aux=True)(trained)
    updates, opt_state = optimizer.update(grads, state.opt_state, trained)
    trained = optax.apply_updates(trained, updates)
    # The EMA's decay warms up as in TF's ExponentialMovingAverage(num_updates):
    # otherwise short runs sample from an average still weighted toward the
    # random initialisation (0.999^1000 = 37% of it after 1000 steps).
    decay = jnp.minimum(ema_rate, (1.0 + state.step) / (10.0 + state.step))
    ema_params = {**jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p,
                                 {name: state.ema_params[name] for name in trained}, trained),
                  **fixed}
    metrics = {**terms, 'grad_norm': optax.tree.norm(grads)}
    return TrainState(state.step + 1, {**trained, **fixed}, ema_params, opt_state), metrics

  return train_step


def make_multi_step(train_step: Callable) -> Callable:
  """Runs train_step over a leading axis of batches and keys [k, ...].

  k > 1 uses lax.scan, which saves dispatches on accelerators; k = 1 calls the
  step directly, since XLA:CPU runs convolutions ~7x slower inside a loop body.
  """

  def multi_step(state, batches, rngs):
    if rngs.shape[0] == 1:
      return train_step(state, jax.tree.map(lambda b: b[0], batches), rngs[0])
    return jax.lax.scan(lambda state, inputs: train_step(state, *inputs), state, (batches, rngs))

  return multi_step


def jit_train_step(job: Job, mesh: Mesh) -> Callable:
  """The compiled step of `train`: (state, batches, rngs [n]) -> (state, metrics).

  batches: {key: [n, B, ...]} for the task's batch_keys, n = training.n_jitted_steps
  steps per call; the batch is sharded over `mesh`, the state replicated and donated.
  """
  task = job.task
  train_step = make_train_step(
      lambda params, batch, rng, step: task.loss_terms(params, batch, rng, train=True,
                                                       step=step),
      job.optimizer, ema_rate=job.training.ema_rate, frozen=task.frozen)
  replicated = NamedSharding(mesh, P())
  return jax.jit(make_multi_step(train_step), donate_argnums=0,
                 in_shardings=(replicated, NamedSharding(mesh, P(None, 'data')), replicated),
                 out_shardings=(replicated, replicated))


def _check_finite(step: int, metrics: dict[str, float]) -> None:
  bad = {k: v for k, v in metrics.items() if not np.isfinite(v)}
  if bad:
    raise JobError(f'non-finite {", ".join(f"{k}={v}" for k, v in bad.items())} at step {step}; '
                   'training stopped, the last checkpoint is the last finite state')


@jax.jit
def _all_finite(tree) -> jax.Array:
  """One program for the whole tree: leaf by leaf, eager jnp compiled one per shape."""
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree)]))


def _crossed(before: int, after: int, every: int) -> bool:
  """Whether a multiple of `every` lies in (before, after]."""
  return every > 0 and after // every > before // every


def train(job: Job) -> TrainState:
  """Trains until training.n_iters (or max_minutes), resuming from the latest checkpoint.

  Returns:
    The final state.
  """
  training = job.training
  check_divisible('training.batch_size', training.batch_size)
  if training.n_jitted_steps > 1 and jax.default_backend() == 'cpu':
    logging.warning('training.n_jitted_steps=%d: XLA:CPU runs a scan of train steps 7-24x '
                    'slower per step than single steps; use 1 on a CPU (BENCHMARKS.md)',
                    training.n_jitted_steps)
  train_data = job.data.open('train', training.batch_size)
  test_data = job.data.open('test', training.batch_size)
  if jax.process_index() == 0:
    (job.workdir / 'config.json').write_text(job.config_json)
    if job.data.tokenizer.to_json():  # a trained one: what the checkpoints' tokens mean
      job.data.tokenizer.save(job.workdir / TOKENIZER_FILE)

  finished = job.workdir / FINISHED
  if jax.process_index() == 0:
    finished.unlink(missing_ok=True)
  state = job.restore()
  if state is None:
    state = init_state(job.task, job.optimizer, job.replicated, seed=job.seed,
                       image_shape=job.image_shape, frozen=job.frozen_params(train_data))
  start = int(state.step)

  step_fn = jit_train_step(job, job.mesh)
  batch_sharding = NamedSharding(job.mesh, P(None, 'data'))
  keys = job.task.batch_keys
  test_loss = jax.jit(functools.partial(job.task.loss, train=False),
                      in_shardings=(job.replicated, job.sharded, job.replicated))

  train_key, test_key, sample_key = (job.stream(name)
                                     for name in ('train', 'test_loss', 'snapshot_samples'))
  log = io.Log(job.workdir, start, training.n_iters, max_minutes=training.max_minutes)
  pending = []  # (last step of a chunk, its metrics on device), checked at logging steps

  truncated, warned = 0, 0  # this host's training captions longer than text.max_len

  def flush() -> None:
    nonlocal warned
    for step, metrics in jax.device_get(pending):
      values = {k: float(np.mean(v)) for k, v in metrics.items()}
      _check_finite(step, values)
    if pending:
      log.scalars(pending[-1][0], values)
    pending.clear()
    if truncated > warned:
      logging.warning('%d training captions on this host since step %d were longer than '
                      'text.max_len=%d tokens and truncated', truncated, start,
                      job.data.max_len)
      warned = truncated

  def save(step: int, state: TrainState) -> None:
    flush()
    if not bool(_all_finite(state.params)):
      raise JobError(f'non-finite parameters at step {step}; not saved, training stopped')
    job.manager.save(step, args=ocp.args.StandardSave(state))

  step = start
  # batch(start), batch(start + 1), ... prepared ahead while the device computes. A thread
  # per 4 cores: on 2 cores 4 decoding threads slowed XLA's step more than the
  # synchronous reads did (digits: 178 steps in 2 minutes against 223; 1 thread: 259-313
  # against 223-287).
  batches = train_data.batches(start, num_threads=max(1, len(os.sched_getaffinity(0)) // 4),
                               prefetch=2)
  out_of_time = False
  try:
    while step < training.n_iters:
      chunk = min(training.n_jitted_steps, training.n_iters - step)
      steps = range(step, step + chunk)
      local = [next(batches) for _ in steps]
      if 'truncated' in local[0]:
        truncated += sum(int(b['truncated'].sum()) for b in local)
      inputs = {k: jax.make_array_from_process_local_data(
          batch_sharding, np.stack([b[k] for b in local])) for k in keys}
      rngs = jnp.stack([jax.random.fold_in(train_key, s) for s in steps])
      state, metrics = step_fn(state, inputs, rngs)
      before, step = step, step + chunk
      pending.append((step, metrics))
      log.advance(chunk)
      out_of_time = log.out_of_time()
      if _crossed(before, step, training.log_freq) or step == training.n_iters or out_of_time:
        flush()
      if _crossed(before, step, training.eval_freq):
        test_batch = test_data.batch(step)
        test_inputs = {k: jax.make_array_from_process_local_data(job.sharded, test_batch[k])
                       for k in keys}
        loss = float(test_loss(state.params, test_inputs, jax.random.fold_in(test_key, step)))
        _check_finite(step, {'test_loss': loss})
        log.scalars(step, {'test_loss': loss})
      snapshot = _crossed(before, step, training.snapshot_freq)
      if (snapshot or _crossed(before, step, training.snapshot_freq_for_preemption)
          or step == training.n_iters or out_of_time):
        save(step, state)
      if snapshot and training.snapshot_sampling and job.task.samples:  # every host
        drawn = draw(job, state.ema_params, jax.random.fold_in(sample_key, step),
                     job.sampling.batch_size)
        if jax.process_index() == 0:  # one row per class or caption
          save_grid(job.workdir / 'samples' / f'step_{step:08d}.png', drawn, drawn.per_row,
                    job.image_shape[0])
      if out_of_time:
        break
  finally:
    job.manager.wait_until_finished()
    log.close()
  if jax.process_index() == 0:
    reason = 'n_iters' if step >= training.n_iters else 'max_minutes'
    io.write_json(finished, {'step': step, 'n_iters': training.n_iters, 'reason': reason})
    w = job.workdir
    grids = f', sample grids {w / "samples"}' if job.task.samples else ''
    stopped = (f' (the time budget, training.max_minutes={training.max_minutes:g}, ended it '
               f'before training.n_iters={training.n_iters})' if reason == 'max_minutes' else '')
    print(f'trained to step {step}{stopped}: checkpoints {w / "checkpoints"}, log '
          f'{w / "log.jsonl"}, TensorBoard {w / "tensorboard"}{grids}')
  return state
