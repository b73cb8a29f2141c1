"""The side effects of scorelab: build from a config, train, evaluate, sample, write files.

Everything here reads the ConfigDict; everything it calls (`sde_lib`, `models`)
takes explicit arguments.
"""

import dataclasses
import functools
import json
import os
import pathlib
import time
from collections.abc import Callable, Sequence
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp
import tensorboardX
import tqdm
from absl import logging
from jax.experimental import multihost_utils
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from PIL import Image

import evaluation
import input_pipeline
import models
import sde_lib


def create_sde(config: ml_collections.ConfigDict) -> sde_lib.SDE:
  """The SDE named by config.sde, with only the hyperparameters that SDE has."""
  cls = sde_lib.SDES.get(config.sde.name)
  if cls is None:
    raise ValueError(f'unknown sde {config.sde.name!r}; known: {sorted(sde_lib.SDES)}')
  fields = {f.name for f in dataclasses.fields(cls)}
  return cls(**{k: v for k, v in config.sde.items() if k in fields})


def create_model(config: ml_collections.ConfigDict) -> nn.Module:
  """The network named by config.model.name, given the config.model keys it has."""
  cls = models.get_model(config.model.name)
  options = {f.name for f in dataclasses.fields(cls)} - {'parent', 'name'}
  kwargs = {k: v for k, v in config.model.items() if k in options}
  kwargs['centered'] = config.data.centered
  if 'num_classes' in options:
    kwargs['num_classes'] = config.model.num_classes or None
  if 'num_levels' in options:  # NCSN: one row of norm scales per noise level
    kwargs['num_levels'] = config.sde.N
  return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()})


class JobError(Exception):
  """A failure of the job that deserves one line, not a traceback (main.py prints it)."""


@flax.struct.dataclass
class TrainState:
  """Everything training updates: one pytree, checkpointed and donated as a whole."""

  step: jax.Array
  params: Any
  ema_params: Any
  opt_state: Any


def create_optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """Adam with linear warmup from 0 and global-norm gradient clipping, as in Song et al."""
  optim = config.optim
  if optim.optimizer != 'adam':
    raise ValueError(f"unknown optimizer {optim.optimizer!r}; known: ['adam']")
  lr = optax.linear_schedule(0.0, optim.lr, optim.warmup) if optim.warmup > 0 else optim.lr
  adam = (optax.adamw(lr, b1=optim.beta1, eps=optim.eps, weight_decay=optim.weight_decay)
          if optim.weight_decay > 0 else optax.adam(lr, b1=optim.beta1, eps=optim.eps))
  if optim.grad_clip > 0:
    return optax.chain(optax.clip_by_global_norm(optim.grad_clip), adam)
  return adam


LossFn = Callable[[jax.Array, sde_lib.ScoreFn, jax.Array], jax.Array]


def create_loss_fn(config: ml_collections.ConfigDict, sde: sde_lib.SDE) -> LossFn:
  """loss(rng, score_fn, images): continuous DSM, or DDPM's (VP) / SMLD's (VE) discrete loss."""
  training = config.training
  if training.continuous:
    return functools.partial(sde_lib.losses.dsm_loss, sde=sde, reduce_mean=training.reduce_mean,
                             likelihood_weighting=training.likelihood_weighting)
  if training.likelihood_weighting:
    raise ValueError('likelihood_weighting needs training.continuous=True')
  if isinstance(sde, sde_lib.VPSDE):
    return functools.partial(sde_lib.losses.ddpm_loss, sde=sde, reduce_mean=training.reduce_mean)
  if isinstance(sde, sde_lib.VESDE):
    return functools.partial(sde_lib.losses.smld_loss, sde=sde, reduce_mean=training.reduce_mean)
  raise ValueError(f'discrete training (training.continuous=False) exists for vpsde (DDPM) and '
                   f'vesde (SMLD), not {config.sde.name!r}')


def make_train_step(model: nn.Module, sde: sde_lib.SDE, loss_fn: LossFn,
                    optimizer: optax.GradientTransformation, *, continuous: bool,
                    ema_rate: float) -> Callable:
  """The pure step train_step(state, images, rng) -> (state, metrics)."""

  def train_step(state: TrainState, images: jax.Array, rng: jax.Array):
    dropout_rng, loss_rng = jax.random.split(rng)

    def loss_of(params):
      score_fn = models.get_score_fn(sde, model, params, continuous=continuous, train=True,
                                     rng=dropout_rng)
      return loss_fn(loss_rng, score_fn, images)

    loss, grads = jax.value_and_grad(loss_of)(state.params)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    # The EMA's decay warms up as in TF's ExponentialMovingAverage(num_updates):
    # otherwise short runs sample from an average still weighted toward the
    # random initialisation (0.999^1000 = 37% of it after 1000 steps).
    decay = jnp.minimum(ema_rate, (1.0 + state.step) / (10.0 + state.step))
    ema_params = jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p,
                              state.ema_params, params)
    metrics = {'loss': loss, 'grad_norm': optax.tree.norm(grads)}
    return TrainState(state.step + 1, params, ema_params, opt_state), metrics

  return train_step


def make_multi_step(train_step: Callable) -> Callable:
  """Runs train_step over a leading axis of batches and keys [k, ...].

  k > 1 uses lax.scan, which saves dispatches on accelerators; k = 1 calls the
  step directly, since XLA:CPU runs convolutions ~7x slower inside a loop body.
  """

  def multi_step(state, images, rngs):
    if images.shape[0] == 1:
      return train_step(state, images[0], rngs[0])
    return jax.lax.scan(lambda state, inputs: train_step(state, *inputs), state, (images, rngs))

  return multi_step


def create_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A 1-D 'data' mesh over `devices`, by default every device of every host."""
  devices = jax.devices() if devices is None else list(devices)
  return jax.make_mesh((len(devices),), ('data',), axis_types=(AxisType.Auto,), devices=devices)


def jit_train_step(config: ml_collections.ConfigDict, model: nn.Module, sde: sde_lib.SDE,
                   optimizer: optax.GradientTransformation, mesh: Mesh) -> Callable:
  """The compiled step of `train`: (state, images [n, B, ...], rngs [n]) -> (state, metrics).

  n = training.n_jitted_steps steps per call; the batch is sharded over `mesh`,
  the state replicated and donated.
  """
  training = config.training
  train_step = make_train_step(model, sde, create_loss_fn(config, sde), optimizer,
                               continuous=training.continuous, ema_rate=config.model.ema_rate)
  replicated = NamedSharding(mesh, P())
  return jax.jit(make_multi_step(train_step), donate_argnums=0,
                 in_shardings=(replicated, NamedSharding(mesh, P(None, 'data')), replicated),
                 out_shardings=(replicated, replicated))


def init_state(config: ml_collections.ConfigDict, model: nn.Module,
               optimizer: optax.GradientTransformation, sharding: NamedSharding) -> TrainState:
  """Fresh parameters (EMA starts equal to them) and optimiser state, replicated."""
  size, channels = config.data.image_size, config.data.num_channels

  def init():
    # RBG keys compile a network's init several times faster than threefry on
    # CPU; training randomness stays threefry (independent of the device count).
    key = jax.random.key(config.seed, impl='rbg')
    params = model.init(key, jnp.zeros((1, size, size, channels)), jnp.ones((1,)))['params']
    return TrainState(jnp.zeros((), jnp.int32), params, params, optimizer.init(params))

  return jax.jit(init, out_shardings=sharding)()


def replicated_abstract(tree: Any, sharding: NamedSharding) -> Any:
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), tree)


def checkpoint_manager(workdir: pathlib.Path, config: ml_collections.ConfigDict
                       ) -> ocp.CheckpointManager:
  """Checkpoints in workdir/checkpoints: the latest one, plus every snapshot_freq-th kept.

  The latest is the preemption snapshot, replaced at each save; orbax writes
  each checkpoint to a temporary directory and renames it when complete, so a
  kill at any moment leaves the previous one intact.
  """
  options = ocp.CheckpointManagerOptions(max_to_keep=1, keep_period=config.training.snapshot_freq,
                                         create=True)
  return ocp.CheckpointManager(workdir / 'checkpoints', options=options,
                               item_handlers=ocp.StandardCheckpointHandler())


def _shapes(tree: Any) -> dict[str, tuple[int, ...]]:
  return {jax.tree_util.keystr(path): tuple(leaf.shape)
          for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def restore_checkpoint(manager: ocp.CheckpointManager, abstract_state: TrainState,
                       step: int | None = None) -> TrainState | None:
  """The checkpoint at `step` (default: the latest), or None if there is none."""
  step = manager.latest_step() if step is None else step
  if step is None:
    return None
  where = f'checkpoint {step} in {manager.directory}'
  if step not in manager.all_steps():
    raise JobError(f'{where} does not exist; have: {list(manager.all_steps())}')
  try:
    saved = manager.item_metadata(step)
    saved = saved.tree if hasattr(saved, 'tree') else saved
    if _shapes(saved['params']) != _shapes(abstract_state.params):
      raise JobError(f'{where} does not match the configured model (different architecture?)')
    state = manager.restore(step, args=ocp.args.StandardRestore(abstract_state))
  except JobError:
    raise
  except Exception as e:  # orbax raises many kinds for corrupt or foreign files
    first_line = str(e).strip().splitlines()[0] if str(e).strip() else ''
    raise JobError(f'cannot restore {where}: {type(e).__name__}: {first_line[:300]}') from None
  return state


def gather(x: jax.Array) -> np.ndarray:
  """A (possibly multi-host) global array as one numpy array on every host."""
  if jax.process_count() == 1:
    return np.asarray(x)
  return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def check_divisible(name: str, batch_size: int) -> None:
  """Batches are split evenly over the devices of the mesh."""
  if batch_size % jax.device_count():
    raise ValueError(f'{name}={batch_size} must be divisible by the {jax.device_count()} devices')


def _crossed(before: int, after: int, every: int) -> bool:
  """Whether a multiple of `every` lies in (before, after]."""
  return every > 0 and after // every > before // every


def to_uint8_images(x: jax.Array, centered: bool) -> np.ndarray:
  """Model-space images [N, H, W, C] -> uint8, undoing the data scaling."""
  x = np.asarray(x, np.float32)
  x = (x + 1.0) / 2.0 if centered else x
  return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)


def image_grid(images: np.ndarray, columns: int | None = None, pad: int = 1) -> np.ndarray:
  """uint8 [N, H, W, C] -> one [rows * (H + pad) + pad, ..., C] image, tiles on a gray border."""
  n, h, w, c = images.shape
  columns = columns or int(np.ceil(np.sqrt(n)))
  rows = int(np.ceil(n / columns))
  grid = np.full((rows * (h + pad) + pad, columns * (w + pad) + pad, c), 128, np.uint8)
  for i, image in enumerate(images):
    r, col = divmod(i, columns)
    grid[pad + r * (h + pad):pad + r * (h + pad) + h,
         pad + col * (w + pad):pad + col * (w + pad) + w] = image
  return grid


def save_png(path: pathlib.Path, image: np.ndarray, scale: int = 1) -> None:
  picture = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
  if scale > 1:  # tiny images (8x8 digits) are unreadable at 1:1
    picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
  path.parent.mkdir(parents=True, exist_ok=True)
  picture.save(path)


_TRAJECTORY_ROWS = 8  # samples shown in the trajectory strip


def create_sampler(config: ml_collections.ConfigDict, sde: sde_lib.SDE,
                   shape: tuple[int, ...], n_frames: int = 0) -> Callable:
  """sample(rng, score_fn, x_T=None) -> (x, nfe[, trajectory]) as configured in config.sampling.

  With n_frames >= 2 the sampler also returns its `sde_lib.sampling.Trajectory`.
  """
  s = config.sampling
  if s.method == 'pc':
    return lambda rng, score_fn, x_T=None: sde_lib.sampling.pc_sample(
        rng, sde, score_fn, shape, predictor=s.predictor, corrector=s.corrector, snr=s.snr,
        n_steps=s.n_steps_each, probability_flow=s.probability_flow, denoise=s.noise_removal,
        eps=s.eps, x_T=x_T, n_frames=n_frames)
  if s.method == 'ode':
    return lambda rng, score_fn, x_T=None: sde_lib.sampling.ode_sample(
        rng, sde, score_fn, shape, rtol=s.rtol, atol=s.atol, method=s.ode_method, eps=s.eps,
        denoise=s.noise_removal, x_T=x_T, n_frames=n_frames)
  raise ValueError(f"unknown sampling method {s.method!r}; known: ['ode', 'pc']")


def trajectory_strip(states: np.ndarray, denoised: np.ndarray) -> np.ndarray:
  """One picture of denoising: per sample, a row of states x(t) over the frames and,
  under it, a row of the denoiser's predictions of x(0) from them.

  Args:
    states: uint8 [F, R, H, W, C], R samples at F times from T to the end.
    denoised: uint8 [F, R, H, W, C], E[x(0) | x(t)] of each state.
  """
  pairs = np.stack([states, denoised], axis=0)  # [2, F, R, H, W, C]
  return image_grid(pairs.transpose(2, 0, 1, 3, 4, 5).reshape((-1,) + states.shape[2:]),
                    columns=states.shape[0])


def check_sampling_config(config: ml_collections.ConfigDict) -> None:
  """Fails now, not at the first snapshot hours later, on unknown sampler names."""
  s = config.sampling
  known = {'method': ('pc', 'ode'), 'predictor': sde_lib.sampling.PREDICTORS,
           'corrector': sde_lib.sampling.CORRECTORS, 'ode_method': sde_lib.sampling.SOLVERS}
  for key, names in known.items():
    if s[key] not in names:
      raise ValueError(f'unknown sampling.{key} {s[key]!r}; known: {sorted(names)}')
  if s.trajectory_frames == 1 or s.trajectory_frames < 0:
    raise ValueError('sampling.trajectory_frames must be 0 (no strip) or at least 2, got '
                     f'{s.trajectory_frames}')


class _Log:
  """Scalars to TensorBoard and workdir/log.jsonl (process 0), and a progress bar."""

  def __init__(self, workdir: pathlib.Path, start: int, total: int):
    self.main = jax.process_index() == 0
    self.bar = tqdm.tqdm(initial=start, total=total, disable=not self.main, unit='step',
                         dynamic_ncols=True)
    self.writer = tensorboardX.SummaryWriter(str(workdir / 'tensorboard')) if self.main else None
    self.jsonl = open(workdir / 'log.jsonl', 'a') if self.main else None

  def scalars(self, step: int, values: dict[str, float]) -> None:
    if not self.main:
      return
    for key, value in values.items():
      self.writer.add_scalar(key, value, step)
    self.jsonl.write(json.dumps({'step': step, **values}) + '\n')
    self.jsonl.flush()
    self.bar.set_postfix({k: f'{v:.4g}' for k, v in values.items() if k in ('loss',)})

  def close(self) -> None:
    self.bar.close()
    if self.main:
      self.writer.close()
      self.jsonl.close()


def _make_workdir(workdir: str) -> pathlib.Path:
  path = pathlib.Path(workdir).absolute()  # orbax refuses relative checkpoint paths
  try:
    path.mkdir(parents=True, exist_ok=True)
    probe = path / f'.writable-{os.getpid()}'  # one per process: hosts may share the workdir
    probe.write_text('')
    probe.unlink()
  except OSError as e:
    raise JobError(f'workdir {workdir!r} is not writable: {e.strerror or e}') from None
  return path


def _data_dir(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> str | None:
  if config.data.data_dir:
    return config.data.data_dir
  return str(workdir / 'data') if config.data.dataset == 'digits' else None


def create_dataset(config: ml_collections.ConfigDict, workdir: pathlib.Path, split: str,
                   batch_size: int):
  """The configured dataset split, sharded over hosts, deterministic in (seed, step)."""
  data = config.data
  return input_pipeline.get_dataset(
      data.dataset, split, data_dir=_data_dir(config, workdir), image_size=data.image_size,
      centered=data.centered, random_flip=data.random_flip and split == 'train',
      uniform_dequantization=data.uniform_dequantization and split == 'train',
      global_batch_size=batch_size, seed=config.seed, process_index=jax.process_index(),
      process_count=jax.process_count(), download=data.download)


class _Job:
  """What train/eval/sample share: SDE, network, optimiser, mesh and checkpoints."""

  def __init__(self, config: ml_collections.ConfigDict, workdir: str):
    self.config = config
    self.workdir = _make_workdir(workdir)
    self.sde = create_sde(config)
    self.model = create_model(config)
    self.optimizer = create_optimizer(config)
    self.mesh = create_mesh()
    self.replicated = NamedSharding(self.mesh, P())
    self.sharded = NamedSharding(self.mesh, P('data'))  # along the leading (batch) axis
    self.manager = checkpoint_manager(self.workdir, config)
    self.image_shape = (config.data.image_size, config.data.image_size, config.data.num_channels)
    check_sampling_config(config)
    check_divisible('sampling.batch_size', config.sampling.batch_size)
    self._samplers: dict[tuple[int, int], Callable] = {}

  def abstract_state(self) -> TrainState:
    shapes = jax.eval_shape(lambda: init_state(self.config, self.model, self.optimizer,
                                               self.replicated))
    return replicated_abstract(shapes, self.replicated)

  def restore(self, step: int | None = None) -> TrainState | None:
    return restore_checkpoint(self.manager, self.abstract_state(), step)

  def _sampler(self, n: int, n_frames: int = 0) -> Callable:
    """The jitted sampler of n images, compiled once per job, size and frame count.

    With n_frames it also returns, for the first rows of the batch, the trajectory's
    states and the denoiser's predictions of x(0) from them, [F, R, ...] each.
    """
    if (n, n_frames) not in self._samplers:
      shape = (n,) + self.image_shape
      sampler = create_sampler(self.config, self.sde, shape, n_frames)
      rows = min(n, _TRAJECTORY_ROWS)

      @functools.partial(jax.jit, in_shardings=(self.replicated, self.replicated))
      def run(params, rng):
        score_fn = models.get_score_fn(self.sde, self.model, params,
                                       continuous=self.config.training.continuous)
        prior_rng, rng = jax.random.split(rng)
        # Sharding the initial noise splits the whole sampler over the devices.
        x_T = jax.lax.with_sharding_constraint(self.sde.prior_sampling(prior_rng, shape),
                                               self.sharded)
        if not n_frames:
          return sampler(rng, score_fn, x_T)
        x, nfe, trajectory = sampler(rng, score_fn, x_T)
        states = trajectory.x[:, :rows]
        # The last state is the sample itself, at a time the score may not be defined at.
        denoised = jax.vmap(lambda t, x: sde_lib.denoiser(
            self.sde, score_fn, x, jnp.full(x.shape[:1], t)))(trajectory.t[:-1], states[:-1])
        return x, nfe, (states, jnp.concatenate([denoised, states[-1:]]))

      self._samplers[n, n_frames] = run
    return self._samplers[n, n_frames]

  def sample(self, params: Any, rng: jax.Array, n: int) -> tuple[np.ndarray, int]:
    """n images (uint8) drawn with the configured sampler from the given parameters."""
    x, nfe = self._sampler(n)(params, rng)
    return to_uint8_images(gather(x), self.config.data.centered), int(nfe)

  def sample_with_trajectory(self, params: Any, rng: jax.Array, n: int, n_frames: int
                             ) -> tuple[np.ndarray, int, np.ndarray]:
    """As `sample`, plus the picture of `trajectory_strip` for the first few samples."""
    x, nfe, (states, denoised) = self._sampler(n, n_frames)(params, rng)
    centered = self.config.data.centered
    strip = trajectory_strip(to_uint8_images(gather(states), centered),
                             to_uint8_images(gather(denoised), centered))
    return to_uint8_images(gather(x), centered), int(nfe), strip


def _check_finite(step: int, metrics: dict[str, float]) -> None:
  bad = {k: v for k, v in metrics.items() if not np.isfinite(v)}
  if bad:
    raise JobError(f'non-finite {", ".join(f"{k}={v}" for k, v in bad.items())} at step {step}; '
                   'training stopped, the last checkpoint is the last finite state')


def train(config: ml_collections.ConfigDict, workdir: str) -> TrainState:
  """Trains until config.training.n_iters (or max_minutes), resuming from the latest checkpoint.

  Returns:
    The final state.
  """
  job = _Job(config, workdir)
  training = config.training
  check_divisible('training.batch_size', training.batch_size)
  if training.n_jitted_steps > 1 and jax.default_backend() == 'cpu':
    logging.warning('training.n_jitted_steps=%d: XLA:CPU runs a scan of train steps 7-24x '
                    'slower per step than single steps; use 1 on a CPU (BENCHMARKS.md)',
                    training.n_jitted_steps)
  train_data = create_dataset(config, job.workdir, 'train', training.batch_size)
  test_data = create_dataset(config, job.workdir, 'test', training.batch_size)
  if jax.process_index() == 0:
    (job.workdir / 'config.json').write_text(config.to_json_best_effort(indent=2))

  state = job.restore()
  if state is None:
    state = init_state(config, job.model, job.optimizer, job.replicated)
  start = int(state.step)

  step_fn = jit_train_step(config, job.model, job.sde, job.optimizer, job.mesh)
  batch_sharding = NamedSharding(job.mesh, P(None, 'data'))
  loss_fn = create_loss_fn(config, job.sde)

  @functools.partial(jax.jit, in_shardings=(job.replicated, job.sharded, job.replicated))
  def test_loss(params, images, rng):
    score_fn = models.get_score_fn(job.sde, job.model, params, continuous=training.continuous)
    return loss_fn(rng, score_fn, images)

  train_key, test_key, sample_key = (jax.random.fold_in(jax.random.key(config.seed), i)
                                     for i in range(3))
  log = _Log(job.workdir, start, training.n_iters)
  started = time.monotonic()
  pending = []  # (last step of a chunk, its metrics on device), checked at logging steps

  def flush() -> None:
    for step, metrics in jax.device_get(pending):
      values = {k: float(np.mean(v)) for k, v in metrics.items()}
      _check_finite(step, values)
    if pending:
      log.scalars(pending[-1][0], values)
    pending.clear()

  def save(step: int, state: TrainState) -> None:
    flush()
    finite = jax.tree.reduce(lambda a, b: a & b,
                             jax.tree.map(lambda p: jnp.all(jnp.isfinite(p)), state.params))
    if not bool(finite):
      raise JobError(f'non-finite parameters at step {step}; not saved, training stopped')
    job.manager.save(step, args=ocp.args.StandardSave(state))

  step = start
  try:
    while step < training.n_iters:
      chunk = min(training.n_jitted_steps, training.n_iters - step)
      steps = range(step, step + chunk)
      local = np.stack([train_data.batch(s)['image'] for s in steps])
      images = jax.make_array_from_process_local_data(batch_sharding, local)
      rngs = jnp.stack([jax.random.fold_in(train_key, s) for s in steps])
      state, metrics = step_fn(state, images, rngs)
      before, step = step, step + chunk
      pending.append((step, metrics))
      log.bar.update(chunk)
      out_of_time = (training.max_minutes > 0
                     and time.monotonic() - started > 60 * training.max_minutes)
      if _crossed(before, step, training.log_freq) or step == training.n_iters or out_of_time:
        flush()
      if _crossed(before, step, training.eval_freq):
        test_images = jax.make_array_from_process_local_data(job.sharded,
                                                             test_data.batch(step)['image'])
        loss = float(test_loss(state.params, test_images, jax.random.fold_in(test_key, step)))
        _check_finite(step, {'test_loss': loss})
        log.scalars(step, {'test_loss': loss})
      snapshot = _crossed(before, step, training.snapshot_freq)
      if (snapshot or _crossed(before, step, training.snapshot_freq_for_preemption)
          or step == training.n_iters or out_of_time):
        save(step, state)
      if snapshot and training.snapshot_sampling:  # every host: the sampler is sharded
        images, _ = job.sample(state.ema_params, jax.random.fold_in(sample_key, step),
                               config.sampling.batch_size)
        if jax.process_index() == 0:
          save_png(job.workdir / 'samples' / f'step_{step:08d}.png', image_grid(images),
                   scale=max(1, 128 // config.data.image_size))
      if out_of_time:
        break
  finally:
    job.manager.wait_until_finished()
    log.close()
  if jax.process_index() == 0:
    w = job.workdir
    print(f'trained to step {step}: checkpoints {w / "checkpoints"}, log {w / "log.jsonl"}, '
          f'TensorBoard {w / "tensorboard"}, sample grids {w / "samples"}')
  return state


def _require_state(job: _Job) -> TrainState:
  state = job.restore()
  if state is None:
    raise JobError(f'no checkpoint in {job.workdir / "checkpoints"}; run --mode train first')
  return state


def sample(config: ml_collections.ConfigDict, workdir: str) -> np.ndarray:
  """Draws config.sampling.num_samples images from the latest checkpoint's EMA parameters.

  Writes workdir/samples/samples_<step>.npz (uint8 images [N, H, W, C]), a PNG
  grid and, with sampling.trajectory_frames, trajectory_<step>.png: the first
  batch's first samples at that many times from the prior to the end, each row
  of states under-laid with the denoiser's prediction of x(0).

  Returns:
    The images.
  """
  job = _Job(config, workdir)
  state = _require_state(job)
  step = int(state.step)
  n, batch = config.sampling.num_samples, config.sampling.batch_size
  n_frames = config.sampling.trajectory_frames
  key = jax.random.fold_in(jax.random.key(config.seed), 10_000 + step)
  chunks, nfe, strip = [], 0, None
  for i in tqdm.trange(-(-n // batch), desc='sampling', disable=jax.process_index() != 0):
    rng = jax.random.fold_in(key, i)
    if i == 0 and n_frames:
      images, nfe, strip = job.sample_with_trajectory(state.ema_params, rng, batch, n_frames)
    else:
      images, nfe = job.sample(state.ema_params, rng, batch)
    chunks.append(images)
  images = np.concatenate(chunks)[:n]
  if jax.process_index() == 0:
    out = job.workdir / 'samples'
    out.mkdir(parents=True, exist_ok=True)
    scale = max(1, 128 // config.data.image_size)
    written = [out / f'samples_{step:08d}.npz', out / f'samples_{step:08d}.png']
    np.savez_compressed(written[0], images=images)
    save_png(written[1], image_grid(images), scale=scale)
    if strip is not None:
      written.append(out / f'trajectory_{step:08d}.png')
      save_png(written[2], strip, scale=scale)
    print(f'{n} samples ({nfe} score evaluations each) from step {step}: '
          + ', '.join(str(p) for p in written))
  return images


def _eval_steps(job: _Job) -> list[int]:
  """The checkpoints to evaluate: the latest, or the kept ones in [begin_ckpt, end_ckpt]."""
  ev = job.config.eval
  steps = sorted(job.manager.all_steps())
  if not steps:
    raise JobError(f'no checkpoint in {job.workdir / "checkpoints"}; run --mode train first')
  if ev.begin_ckpt <= 0:
    return steps[-1:]
  chosen = [s for s in steps if ev.begin_ckpt <= s <= (ev.end_ckpt or s)]
  if not chosen:
    raise JobError(f'no checkpoint between eval.begin_ckpt={ev.begin_ckpt} and '
                   f'eval.end_ckpt={ev.end_ckpt}; have: {steps}')
  return chosen


def _to_unit_range(images: jax.Array, centered: bool) -> jax.Array:
  """Model-space images back to [0, 1]."""
  return (images + 1.0) / 2.0 if centered else images


def _digits_metrics(job: _Job, samples: np.ndarray) -> dict[str, float]:
  """FD/KID/IS of uint8 digit samples in a digit classifier's feature space.

  The classifier is trained deterministically on the training split
  (`evaluation.train_digits_classifier`) and cached in workdir/eval.
  """
  cache = job.workdir / 'eval' / 'digits_classifier.npz'
  if cache.exists():
    params = flax.serialization.msgpack_restore(cache.read_bytes())
  else:
    train = create_dataset(job.config, job.workdir, 'train', job.config.eval.batch_size)
    images, labels = _whole_split(train, job.config)
    params = evaluation.train_digits_classifier(images, labels, seed=job.config.seed)
    cache.write_bytes(flax.serialization.msgpack_serialize(jax.device_get(params)))
  test = create_dataset(job.config, job.workdir, 'test', job.config.eval.batch_size)
  real, _ = _whole_split(test, job.config)
  real_features, _ = evaluation.digits_features(params, real)
  fake_features, fake_logits = evaluation.digits_features(params, samples / 255.0)
  return evaluation.feature_metrics(real_features, fake_features, fake_logits,
                                    is_splits=min(10, len(samples)), seed=job.config.seed,
                                    kid_subset_size=job.config.eval.kid_subset_size)


def _whole_split(data, config: ml_collections.ConfigDict) -> tuple[np.ndarray, np.ndarray]:
  """All images of a split (every host's share), in [0, 1], and their labels."""
  batches = list(data.epoch(config.eval.batch_size))
  images, labels, mask = (gather(np.concatenate([b[name] for b in batches]))
                          for name in ('image', 'label', 'mask'))
  return np.asarray(_to_unit_range(images[mask], config.data.centered)), labels[mask]


def evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[int, dict[str, float]]:
  """Test loss, bits/dim and sample quality of chosen checkpoints, into workdir/eval/*.json.

  A checkpoint whose JSON exists is skipped, so a preempted evaluation resumes.

  Returns:
    {step: metrics}.
  """
  job = _Job(config, workdir)
  ev = config.eval
  check_divisible('eval.batch_size', ev.batch_size)
  out = job.workdir / 'eval'
  out.mkdir(parents=True, exist_ok=True)
  loss_fn = create_loss_fn(config, job.sde)
  continuous = config.training.continuous
  key = jax.random.fold_in(jax.random.key(config.seed), 20_000)
  results = {}
  for step in _eval_steps(job):
    path = out / f'step_{step:08d}.json'
    if path.exists():
      results[step] = json.loads(path.read_text())
      continue
    state = job.restore(step)
    metrics: dict[str, float] = {}
    test = create_dataset(config, job.workdir, ev.bpd_dataset, ev.batch_size)

    @functools.partial(jax.jit, in_shardings=(job.replicated, job.sharded, job.sharded,
                                              job.replicated))
    def loss_and_bpd(params, images, mask, rng):
      score_fn = models.get_score_fn(job.sde, job.model, params, continuous=continuous)
      loss_rng, bpd_rng = jax.random.split(rng)
      bpd, _, _ = sde_lib.likelihood.bits_per_dim(
          bpd_rng, job.sde, score_fn,
          jnp.round(_to_unit_range(images, config.data.centered) * 255.0),
          estimator=ev.bpd_estimator, n_bits=8, centered=config.data.centered,
          rtol=ev.rtol, atol=ev.atol)
      return loss_fn(loss_rng, score_fn, images, weights=mask.astype(images.dtype)), bpd

    losses, bpds = [], []
    for i, batch in enumerate(tqdm.tqdm(list(test.epoch(ev.batch_size)), desc=f'eval {step}',
                                        disable=jax.process_index() != 0)):
      images, mask = (jax.make_array_from_process_local_data(job.sharded, batch[name])
                      for name in ('image', 'mask'))
      loss, bpd = loss_and_bpd(state.ema_params, images, mask, jax.random.fold_in(key, i))
      mask = gather(mask)
      losses.append((float(loss), int(mask.sum())))
      bpds.append(gather(bpd)[mask])
    if ev.enable_loss:
      metrics['test_loss'] = sum(l * n for l, n in losses) / sum(n for _, n in losses)
    if ev.enable_bpd:
      metrics['bpd'] = float(np.mean(np.concatenate(bpds)))
    if ev.enable_sampling:
      n, batch = ev.num_samples, config.sampling.batch_size
      samples = np.concatenate([
          job.sample(state.ema_params, jax.random.fold_in(key, 100_000 + i), batch)[0]
          for i in range(-(-n // batch))])[:n]
      if config.data.dataset == 'digits':
        metrics.update(_digits_metrics(job, samples))
      else:
        metrics.update(_inception_metrics(job, samples))
      metrics['num_samples'] = n
    metrics['step'] = step
    if jax.process_index() == 0:
      tmp = path.with_suffix('.tmp')
      tmp.write_text(json.dumps(metrics, indent=2))
      tmp.rename(path)  # atomic: a preempted evaluation never leaves half a file
      print(f'step {step}: ' + ', '.join(f'{k}={v:.4g}' for k, v in metrics.items()
                                          if k != 'step') + f' -> {path}')
    results[step] = metrics
  return results


def _inception_metrics(job: _Job, samples: np.ndarray) -> dict[str, float]:
  """FID/KID/IS with the FID Inception network, from weights at config.eval.inception_weights."""
  path = job.config.eval.inception_weights
  if not path:
    raise JobError('sample-quality metrics need the FID Inception weights: set '
                   '--config.eval.inception_weights=/path/to/inception.npz (see evaluation.py '
                   'for converting pytorch-fid\'s file), or --config.eval.enable_sampling=False')
  variables = evaluation.load_inception_params(path)
  test = create_dataset(job.config, job.workdir, job.config.eval.bpd_dataset,
                        job.config.eval.batch_size)
  real, _ = _whole_split(test, job.config)
  real_features, _ = evaluation.inception_features(variables, real * 2.0 - 1.0)
  fake_features, fake_logits = evaluation.inception_features(variables,
                                                             samples / 127.5 - 1.0)
  return evaluation.feature_metrics(real_features, fake_features, fake_logits,
                                    is_splits=min(10, len(samples)), seed=job.config.seed,
                                    kid_subset_size=job.config.eval.kid_subset_size)
