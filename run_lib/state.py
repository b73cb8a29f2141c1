"""The training state and its checkpoints (orbax)."""

import pathlib
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax
import orbax.checkpoint as ocp
from jax.sharding import NamedSharding

from run_lib.errors import JobError


@flax.struct.dataclass
class TrainState:
  """Everything training updates: one pytree, checkpointed and donated as a whole."""

  step: jax.Array
  params: dict[str, Any]  # the task's named trees, e.g. {'score': ...}
  ema_params: dict[str, Any]
  opt_state: Any


def trainable(task, params: dict[str, Any]) -> dict[str, Any]:
  """The trees of params that a task trains: all but its frozen ones."""
  return {name: tree for name, tree in params.items() if name not in task.frozen}


def init_state(task, optimizer: optax.GradientTransformation, sharding: NamedSharding, *,
               seed: int, image_shape: tuple[int, ...],
               frozen: dict[str, Any] | None = None) -> TrainState:
  """The task's fresh parameter trees (the EMA starts equal to them) and the optimiser state
  of the trainable ones, replicated. `frozen` holds the values of the task's frozen trees
  (e.g. weights read from a file); without it they keep the task's stand-ins."""

  def init():
    # RBG keys compile a network's init several times faster than threefry on
    # CPU; training randomness stays threefry (independent of the device count).
    params = task.init(jax.random.key(seed, impl='rbg'), image_shape)
    if frozen is not None:  # the stand-ins are not computed: XLA drops what is not returned
      params = {**params, **{name: None for name in task.frozen}}
    return TrainState(jnp.zeros((), jnp.int32), params, params,
                      optimizer.init(trainable(task, params)))

  state = jax.jit(init, out_shardings=sharding)()
  if frozen is None:
    return state
  if sorted(frozen) != sorted(task.frozen):
    raise ValueError(f'frozen trees {sorted(frozen)} given for the task\'s {list(task.frozen)}')
  stand_ins = jax.eval_shape(lambda: task.init(jax.random.key(seed, impl='rbg'), image_shape))
  for name in task.frozen:
    if _shapes(frozen[name]) != _shapes(stand_ins[name]):
      raise JobError(f'the {name!r} weights do not have the shapes the configured task '
                     'expects (another architecture?)')
  fixed = jax.device_put(frozen, sharding)
  return state.replace(params={**state.params, **fixed}, ema_params={**state.ema_params, **fixed})


def replicated_abstract(tree: Any, sharding: NamedSharding) -> Any:
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), tree)


def checkpoint_manager(workdir: pathlib.Path, snapshot_freq: int) -> ocp.CheckpointManager:
  """Checkpoints in workdir/checkpoints: the latest one, plus every snapshot_freq-th kept.

  The latest is the preemption snapshot, replaced at each save; orbax writes
  each checkpoint to a temporary directory and renames it when complete, so a
  kill at any moment leaves the previous one intact.
  """
  if jax.default_backend() == 'cpu':
    # Orbax writes a replicated array in slices, one per replica, in parallel: on CPU
    # devices, which share the host's memory, that buys nothing and compiles a slice per
    # shape and replica (the first save of a digits latent job: 24 s against 1.5 s).
    # Orbax itself turns it off on GPU; TPU hosts keep it.
    ocp.type_handlers.register_type_handler(
        jax.Array, ocp.type_handlers.ArrayHandler(use_replica_parallel=False), override=True)
  options = ocp.CheckpointManagerOptions(max_to_keep=1, keep_period=snapshot_freq, create=True)
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
    trees, wanted = sorted(saved['params']), sorted(abstract_state.params)
    if trees != wanted:  # another task's, or a network's own tree (before named trees)
      listed = ', '.join(trees[:3]) + (', ...' if len(trees) > 3 else '')
      raise JobError(f'{where} holds the parameter trees [{listed}], the configured task '
                     f'{wanted}: another training.task, or written before parameters were '
                     'named trees')
    if _shapes(saved['params']) != _shapes(abstract_state.params):
      raise JobError(f'{where} does not match the configured model (different architecture?)')
    state = manager.restore(step, args=ocp.args.StandardRestore(abstract_state))
  except JobError:
    raise
  except Exception as e:  # orbax raises many kinds for corrupt or foreign files
    first_line = str(e).strip().splitlines()[0] if str(e).strip() else ''
    raise JobError(f'cannot restore {where}: {type(e).__name__}: {first_line[:300]}') from None
  return state
