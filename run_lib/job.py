"""The Job: everything train, sample, evaluate and sweep share, built once by `build`.

A Job is a frozen dataclass of built parts (the SDE, the task with its networks, the
optimiser, the sampler, the conditions of its samples, how to open its data, its
evaluators, the mesh and the checkpoints) and of the few typed settings the loops read.
It holds no ConfigDict: `run_lib.build` (run_lib.builder) reads the config once and makes it.
"""

import dataclasses
import pathlib
from collections.abc import Callable, Iterator
from typing import Any

import jax
import numpy as np
import optax
import orbax.checkpoint as ocp
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import sde_lib
from data import pipeline, text
from data.common import DatasetError
from run_lib import state as state_lib
from run_lib.conditions import Completion, Conditioning, Prompts, guided_score_fn
from run_lib.errors import JobError
from run_lib.mesh import gather

# A trained tokenizer's file in the workdir whose checkpoints read its tokens.
TOKENIZER_FILE = 'tokenizer.json'
# Written into a workdir when its training ends as configured (n_iters or max_minutes): a
# latent model's autoencoder must be one that did.
FINISHED = 'finished.json'

# Streams of randomness, each its own fold of the root key: no two can collide.
STREAMS = {'train': 0, 'test_loss': 1, 'snapshot_samples': 2, 'sample': 3, 'eval': 4,
           'latent_scale': 5}


@dataclasses.dataclass(frozen=True)
class Data:
  """How the job opens a split of its dataset (data.*, text.max_len and text.tokenizer).

  Splits are sharded over the hosts and deterministic in (seed, step); the training split
  alone is flipped and dequantised.
  """

  dataset: str
  data_dir: str | None
  image_size: tuple[int, int]  # (H, W)
  num_channels: int | None  # checked against the dataset's when not None
  centered: bool
  levels: int
  random_flip: bool
  uniform_dequantization: bool
  download: bool
  caption_key: str
  max_len: int
  tokenizer: text.Tokenizer
  seed: int

  def open(self, split: str, batch_size: int) -> pipeline.ImageDataset:
    """One split, as training batches of batch_size (global) and ordered epochs."""
    train = split == 'train'
    dataset = pipeline.get_dataset(
        self.dataset, split, data_dir=self.data_dir, image_size=self.image_size,
        centered=self.centered, random_flip=self.random_flip and train,
        uniform_dequantization=self.uniform_dequantization and train,
        global_batch_size=batch_size, levels=self.levels, seed=self.seed,
        process_index=jax.process_index(), process_count=jax.process_count(),
        download=self.download, caption_key=self.caption_key, max_len=self.max_len,
        tokenizer=self.tokenizer)
    if self.num_channels is not None and dataset.num_channels != self.num_channels:
      raise DatasetError(
          f'{self.dataset} has {dataset.num_channels}-channel images but data.num_channels is '
          f'{self.num_channels}: set --config.data.num_channels={dataset.num_channels}')
    return dataset

  def parts(self, split: str, batch_size: int) -> Iterator[dict[str, np.ndarray]]:
    """A split's examples in order, a batch at a time (images in model space, labels, and
    tokens when it has captions), every host's share gathered, padding dropped."""
    for part in self.open(split, batch_size).epoch(batch_size):
      valid = gather(part['mask'])
      yield {k: gather(v)[valid] for k, v in part.items() if k != 'mask'}

  def examples(self, split: str, batch_size: int,
               limit: int | None = None) -> dict[str, np.ndarray]:
    """A split's examples (`parts`) together; only the first `limit` when given (the rest
    is not read)."""
    parts, have = [], 0
    for part in self.parts(split, batch_size):
      parts.append(part)
      have += len(part['image'])
      if limit is not None and have >= limit:
        break
    return {k: np.concatenate([p[k] for p in parts])[:limit] for k in parts[0]}

  def plain(self, dataset: str, image_size: tuple[int, int]) -> 'Data':
    """Another dataset of the same data directory in [0, 1], without augmentation or
    captions (what a feature classifier trains on)."""
    return dataclasses.replace(self, dataset=dataset, image_size=image_size, centered=False,
                               random_flip=False, uniform_dequantization=False,
                               caption_key='', num_channels=None)


@dataclasses.dataclass(frozen=True)
class Training:
  """The loop's settings (training.*, model.ema_rate)."""

  batch_size: int
  n_iters: int
  max_minutes: float
  n_jitted_steps: int
  log_freq: int
  eval_freq: int
  snapshot_freq: int
  snapshot_freq_for_preemption: int
  snapshot_sampling: bool
  ema_rate: float


@dataclasses.dataclass(frozen=True)
class Sampling:
  """--mode sample's settings: samples per call, in all, trajectory frames."""

  batch_size: int
  num_samples: int
  trajectory_frames: int


@dataclasses.dataclass(frozen=True)
class Evaluation:
  """--mode eval's settings: the evaluators of eval.metrics, in order (run_lib.evaluate),
  the split they read, its batch size, the checkpoints, and the feature network of the
  sample-quality metrics (metrics.features)."""

  evaluators: tuple[Any, ...]
  split: str
  batch_size: int
  begin_ckpt: int
  end_ckpt: int
  features: Callable
  inception_weights: str

  @property
  def names(self) -> tuple[str, ...]:
    return tuple(evaluator.name for evaluator in self.evaluators)


@dataclasses.dataclass(frozen=True)
class Sweep:
  """--mode sweep's settings (sweep.*)."""

  index: int
  metric: str
  x: str


@dataclasses.dataclass(frozen=True, eq=False)
class Job:
  """A built job.

  Attributes:
    workdir: where its checkpoints, logs and outputs go (absolute).
    seed: the root of every stream of randomness (`stream`).
    sde: the forward SDE.
    task: what is trained and sampled (tasks.TASKS), with its networks.
    optimizer: the optax transformation of the trainable trees.
    sampler: the configured sampler (run_lib.builder.SamplerSpec).
    conditioning: what samples are conditioned on and how they are guided.
    completion: what --mode sample completes (inpainting, colorization), if anything.
    data: how the job's dataset is opened.
    image_shape: [H, W, C] of the data's images.
    training, sampling, evaluation, sweep: the loops' settings.
    mesh: the device mesh of every host's devices.
    manager: the orbax checkpoint manager of workdir/checkpoints.
    config_json: the config, as train writes it into the workdir.
    classifier: the guiding classifier of classifier guidance, or None.
    prompts: a text job's captions to draw (`Prompts`), read on first call; else None.
    base: a super-resolution job's base stage (run_lib.stages.CascadeBase), loaded on
      first call (it fails there when sampling.cascade_from is not set); else None.
    fill_frozen: fill_frozen(job, train_data) -> the values of the task's frozen trees at a
      fresh start (run_lib.stages); None when the task has none.
    compiled: what the job builds once on first use: its jitted programs (sample.py,
      evaluate.py), its abstract state.
  """

  workdir: pathlib.Path
  seed: int
  sde: sde_lib.SDE
  task: Any
  optimizer: optax.GradientTransformation
  sampler: Any
  conditioning: Conditioning
  completion: Completion
  data: Data
  image_shape: tuple[int, int, int]
  training: Training
  sampling: Sampling
  evaluation: Evaluation
  sweep: Sweep
  mesh: Mesh
  manager: ocp.CheckpointManager
  config_json: str
  classifier: Any = None
  prompts: Callable[[], Prompts] | None = None
  base: Callable[[], Any] | None = None
  fill_frozen: Callable[['Job', pipeline.ImageDataset], dict] | None = None
  compiled: dict = dataclasses.field(default_factory=dict, init=False, repr=False)

  @property
  def replicated(self) -> NamedSharding:
    return NamedSharding(self.mesh, P())

  @property
  def sharded(self) -> NamedSharding:
    """Along the leading (batch) axis."""
    return NamedSharding(self.mesh, P('data'))

  def stream(self, name: str) -> jax.Array:
    """The root key of one named stream of randomness of the job."""
    return jax.random.fold_in(jax.random.key(self.seed), STREAMS[name])

  def per_row(self, n: int) -> int | None:
    """Samples per grid row among n: per class or per caption drawn; None when neither."""
    if self.prompts is not None:
      return self.prompts().per_row(n)
    return self.conditioning.per_row(n) if self.conditioning.classes else None

  def sampling_score_fn(self, params: Any, conditions: dict[str, Any],
                        classifier_params: Any = None) -> sde_lib.ScoreFn:
    """The score the samplers follow under `conditions` (conditions.guided_score_fn):
    'label' [B] for classes, 'tokens' [B, L] for captions, 'inputs' for the network's
    image inputs (a super-resolution task's sampling_inputs); classifier guidance takes
    the classifier's parameters."""
    return guided_score_fn(self.task, self.conditioning, params, conditions,
                           self.classifier.job.task if self.classifier else None,
                           classifier_params)

  def frozen_params(self, train_data: pipeline.ImageDataset) -> dict[str, Any] | None:
    """The values of the task's frozen trees at a fresh start (None if it has none)."""
    return None if self.fill_frozen is None else self.fill_frozen(self, train_data)

  def abstract_state(self) -> state_lib.TrainState:
    """The shapes and shardings of the job's TrainState, traced once per job (a latent
    model's traces its autoencoder too)."""
    if 'abstract_state' not in self.compiled:
      shapes = jax.eval_shape(lambda: state_lib.init_state(
          self.task, self.optimizer, self.replicated, seed=self.seed,
          image_shape=self.image_shape))
      self.compiled['abstract_state'] = state_lib.replicated_abstract(shapes, self.replicated)
    return self.compiled['abstract_state']

  def restore(self, step: int | None = None) -> state_lib.TrainState | None:
    return state_lib.restore_checkpoint(self.manager, self.abstract_state(), step)

  def require_state(self, step: int | None = None) -> state_lib.TrainState:
    """restore(step), failing in one line when there is no checkpoint."""
    state = self.restore(step)
    if state is None:
      raise JobError(f'no checkpoint in {self.workdir / "checkpoints"}; run --mode train '
                     'first')
    return state
