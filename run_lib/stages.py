"""What a job takes from other workdirs and files: a guiding classifier, a cascade's base
stage, a latent model's first stage; and how the task's frozen trees are filled at a fresh
start (LPIPS weights, a first stage's weights and the latents' scale).

`run_lib.builder` finds and checks them (reading the other workdirs' saved configs); these
are the parts it makes of them.
"""

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import models
import tasks
from run_lib.errors import JobError


@dataclasses.dataclass(frozen=True)
class GuidingClassifier:
  """A noise-conditional classifier trained by another job, for classifier guidance:
  its job (whose task is a tasks.NoisyClassifier), EMA parameters and step."""

  job: Any
  params: Any
  step: int


@dataclasses.dataclass(frozen=True)
class CascadeBase:
  """The stage a super-resolution job upsamples: its job (a diffusion or super-resolution
  job of its own config and sampler), EMA parameters and step."""

  job: Any
  params: Any
  step: int


@dataclasses.dataclass(frozen=True, eq=False)
class FirstStage:
  """A latent model's frozen autoencoder: its task (network and data range), where it comes
  from, and how to read its weights (the 'autoencoder' tree), done once, when a latent
  model starts training; later its checkpoints hold them."""

  task: tasks.Autoencoder
  source: str
  read_params: Callable[[], Any] | None


@dataclasses.dataclass(frozen=True)
class LpipsWeights:
  """An autoencoder's frozen 'lpips' tree, read from a local file (autoencoder.lpips_weights)."""

  path: str

  def __call__(self, job: Any, train_data: Any) -> dict[str, Any]:
    del job, train_data
    try:
      return {'lpips': models.load_lpips_params(self.path)}
    except ValueError as e:
      raise JobError(f'autoencoder.lpips_weights {self.path!r}: {e}') from None


@dataclasses.dataclass(frozen=True, eq=False)
class FirstStageWeights:
  """A latent model's frozen trees: its autoencoder's weights ('autoencoder') and the
  latents' scale ('latent'), `scale` or, when 0, 1 / the std of the unscaled latents of
  `scale_batches` training batches (LDM's scale_by_std, over more than its one batch)."""

  first_stage: FirstStage
  scale: float
  scale_batches: int

  def __call__(self, job: Any, train_data: Any) -> dict[str, Any]:
    autoencoder = self.first_stage.read_params()
    scale = self.scale or 1.0 / self.latent_std(job, autoencoder, train_data)
    return {'autoencoder': autoencoder, 'latent': {'scale': np.float32(scale)}}

  def latent_std(self, job: Any, autoencoder: Any, train_data: Any) -> float:
    """The std of all elements of the unscaled latents of the first scale_batches
    training batches."""
    params = {'autoencoder': jax.device_put(autoencoder, job.replicated)}

    @jax.jit
    def moments(params, images, rng):
      z = job.task.unscaled_latents(params, images, rng)
      return jnp.stack([jnp.sum(z), jnp.sum(jnp.square(z)), z.size])

    rng = job.stream('latent_scale')
    total = np.zeros(3)
    for i in range(self.scale_batches):
      images = jax.make_array_from_process_local_data(job.sharded,
                                                      train_data.batch(i)['image'])
      total += np.asarray(moments(params, images, jax.random.fold_in(rng, i)), np.float64)
    mean = total[0] / total[2]
    std = float(np.sqrt(max(total[1] / total[2] - mean**2, 0.0)))
    if not std > 0:
      raise JobError(f'the latents of {self.first_stage.source} have std {std}: no scale')
    return std
