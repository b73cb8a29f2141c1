"""What a job's samples are conditioned on: classes, captions, test images to complete; and
the score its samplers follow under them, guided (sde_lib.guidance)."""

import dataclasses
import pathlib
from collections.abc import Iterable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

import sde_lib
from data import text
from run_lib.errors import JobError
from sde_lib import controllable, guidance


@dataclasses.dataclass(frozen=True)
class Conditioning:
  """What the job's samples are conditioned on: nothing (guidance ''), or the classes to
  draw, in blocks of `per_row` consecutive samples, under classifier-free guidance of a
  class-conditional network ('classifier-free') or classifier guidance ('classifier').

  A text-conditional network draws captions instead (Prompts), under classifier-free
  guidance on them.

  Attributes:
    num_classes: the network's classes (its null class), 0 if unconditional.
    label_dropout: the training batches' label dropout.
    classes: the classes drawn, in turn.
    scale: the guidance scale s (sde_lib.guidance).
    interval: (t_lo, t_hi) of classifier-free guidance, or None for every t.
    guidance: '', 'classifier-free' or 'classifier'.
    text: the network reads captions.
  """

  num_classes: int
  label_dropout: float
  classes: tuple[int, ...]
  scale: float
  interval: tuple[float, float] | None
  guidance: str
  text: bool = False

  def labels(self, index, per_row: int):
    """The class of sample number `index` (NumPy or jnp ints): the classes in turn,
    `per_row` samples each."""
    classes = (jnp if isinstance(index, jax.Array) else np).asarray(self.classes, np.int32)
    return classes[(index // per_row) % len(self.classes)]

  def per_row(self, n: int) -> int:
    """Samples per class among n: the grid's row length."""
    return -(-n // len(self.classes))

  def describe(self) -> str:
    """What the samples are drawn for, in words ('' for nothing)."""
    if not self.guidance or self.text:
      return ''
    return (f'classes {list(self.classes)}, one row each, {self.guidance} guidance scale '
            f'{self.scale}'
            + (f' for t in [{self.interval[0]}, {self.interval[1]}]' if self.interval else ''))


def guided_score_fn(task: Any, conditioning: Conditioning, params: Any,
                    conditions: dict[str, Any], classifier: Any = None,
                    classifier_params: Any = None) -> sde_lib.ScoreFn:
  """The score a job's samplers follow: the network's, or its guided score.

  Args:
    task: the job's task (a tasks.Diffusion).
    conditioning: what is drawn and how it is guided.
    params: the task's parameters.
    conditions: 'label' [B] (a class-conditional or classifier-guided job's classes),
      'tokens' [B, L] (a text job's captions) and 'inputs' (the network's image inputs,
      a super-resolution task's sampling_inputs), each when the job has them.
    classifier: the guiding classifier's task (sampling.guidance 'classifier').
    classifier_params: its parameters.

  Returns:
    Classifier-free guidance of a class-conditional network on its labels or of a text
    network on its captions (the image inputs the same in both halves), classifier
    guidance by the classifier, or the plain score.
  """
  c, score_fn = conditioning, task.score_fn
  inputs, labels = conditions.get('inputs', {}), conditions.get('label')
  if c.text:
    tokens = conditions['tokens']
    # Read once per sampling run, outside the sampler's loop.
    caption = task.encode_text(params, tokens)
    if c.scale == 1.0:
      return score_fn(params, caption=caption, **inputs)
    return guidance.classifier_free(
        lambda x, t, cond: score_fn(params, caption=cond[0], **cond[1])(x, t),
        (caption, inputs), (task.null_caption(params, tokens.shape[0]), inputs),
        scale=c.scale, interval=c.interval)
  if c.guidance == 'classifier':
    return guidance.classifier(score_fn(params, **inputs),
                               classifier.log_prob_fn(classifier_params, labels), scale=c.scale)
  if not c.num_classes:
    return score_fn(params, **inputs)
  if c.scale == 1.0:  # the conditional model, inside any interval or out: one plain call
    return score_fn(params, labels, **inputs)
  return guidance.classifier_free(
      lambda x, t, cond: score_fn(params, cond[0], **cond[1])(x, t),
      (labels, inputs), (jnp.full_like(labels, c.num_classes), inputs), scale=c.scale,
      interval=c.interval)


@dataclasses.dataclass(frozen=True, eq=False)
class Prompts:
  """The captions a text-conditional job draws, in turn, in blocks of `per_row`
  consecutive samples.

  Attributes:
    captions: the captions.
    tokens: [K, text.max_len] their tokens.
    labels: [K] the dataset's labels of the test examples they come from, or None (a
      captions file).
    source: where they come from, for messages.
  """

  captions: tuple[str, ...]
  tokens: np.ndarray
  labels: np.ndarray | None
  source: str

  def per_row(self, n: int) -> int:
    """Samples per caption among n: the grid's row length."""
    return -(-n // len(self.captions))

  def index(self, index: np.ndarray, per_row: int) -> np.ndarray:
    """The caption of sample number `index`: the captions in turn, per_row samples each."""
    return (np.asarray(index) // per_row) % len(self.captions)


def read_captions(path: str, *, max_len: int, tokenizer: text.Tokenizer,
                  num_samples: int) -> Prompts:
  """A captions file: one caption per line (blank lines skipped), each no longer than
  max_len - 1 tokens and no more lines than num_samples (sampling.captions_file)."""
  try:
    lines = pathlib.Path(path).read_text(encoding='utf-8').splitlines()
  except FileNotFoundError:
    raise JobError(f'sampling.captions_file {path!r} does not exist') from None
  except (OSError, UnicodeDecodeError) as e:
    raise JobError(f'cannot read sampling.captions_file {path!r}: {e}') from None
  numbered = [(i + 1, line) for i, line in enumerate(lines) if line.strip()]
  if not numbered:
    raise JobError(f'sampling.captions_file {path!r} has no captions (one per line)')
  if len(numbered) > num_samples:
    raise JobError(f'sampling.captions_file {path!r} has {len(numbered)} captions but '
                   f'sampling.num_samples={num_samples} draws only the first {num_samples}: '
                   f'set --config.sampling.num_samples={len(numbered)} (or a multiple)')
  captions = tuple(line for _, line in numbered)
  for line, caption in numbered:
    try:
      n = len(tokenizer.encode(caption))
    except ValueError as e:  # a word outside a word tokenizer's vocabulary
      raise JobError(f'line {line} of {path!r}: {e}') from None
    if n > max_len - 1:
      unit = 'bytes' if tokenizer.name == 'bytes' else 'tokens'
      raise JobError(f'caption on line {line} of {path!r} has {n} {unit}; the model reads at '
                     f'most text.max_len - 1 = {max_len - 1}')
  tokens, _ = text.tokenize(captions, max_len=max_len, tokenizer=tokenizer)
  return Prompts(captions, tokens, None, path)


def test_prompts(parts: Iterable[dict[str, np.ndarray]], n: int, *, distinct: bool,
                 tokenizer: text.Tokenizer) -> Prompts:
  """The captions (and labels) of the first test examples, from a split's gathered `parts`
  (run_lib.job.Data.parts) tokenized by `tokenizer`: n of them, or with `distinct` the first
  n different captions (fewer if the split has fewer)."""
  tokens, labels, seen = [], [], set()
  for part in parts:
    for row, label in zip(part['tokens'], part['label'], strict=True):
      if distinct and row.tobytes() in seen:
        continue
      seen.add(row.tobytes())
      tokens.append(row)
      labels.append(label)
    if len(tokens) >= n:
      break
  tokens, labels = np.stack(tokens[:n]), np.asarray(labels[:n], np.int32)
  return Prompts(tuple(text.detokenize(tokens, tokenizer)), tokens, labels, 'the test split')


MASKS = ('left', 'right', 'top', 'bottom', 'center')


def named_mask(name: str, size: tuple[int, int]) -> np.ndarray:
  """[H, W] 1 where pixels are kept, 0 in the region that `name` regenerates (the centre
  region is half the height by half the width)."""
  height, width = size
  keep = np.ones((height, width), np.float32)
  region = {'left': np.s_[:, :width // 2], 'right': np.s_[:, width // 2:],
            'top': np.s_[:height // 2], 'bottom': np.s_[height // 2:],
            'center': np.s_[height // 4:height // 4 + height // 2,
                            width // 4:width // 4 + width // 2]}[name]
  keep[region] = 0.0
  return keep


def read_mask(path: str, size: tuple[int, int]) -> np.ndarray:
  """A PNG mask of the image size: white (>= 128) pixels are regenerated, others kept."""
  try:
    with Image.open(path) as image:
      grey = np.asarray(image.convert('L'))
  except FileNotFoundError:
    raise JobError(f'sampling.mask file {path!r} does not exist; or name a mask: '
                   f'{list(MASKS)}') from None
  except Exception as e:  # PIL raises several kinds for files that are not images
    raise JobError(f'cannot read sampling.mask {path!r}: {type(e).__name__}: {e}') from None
  if grey.shape != tuple(size):
    raise JobError(f'sampling.mask {path!r} is {grey.shape[1]}x{grey.shape[0]} pixels; the '
                   f'images are {size[1]}x{size[0]}')
  return (grey < 128).astype(np.float32)


SAMPLING_TASKS = ('', 'inpaint', 'colorize')


@dataclasses.dataclass(frozen=True, eq=False)
class Completion:
  """What --mode sample completes: nothing (task ''), the masked region of test images
  ('inpaint'), or their colours ('colorize'), `completions` times each.

  Attributes:
    task: '', 'inpaint' or 'colorize'.
    mask: [H, W] 1 where pixels are kept (inpaint), else None.
    completions: completions per test image.
    mask_name: what the mask is, for messages (a name of MASKS or a file).
  """

  task: str
  mask: np.ndarray | None
  completions: int
  mask_name: str = ''

  def replacement(self, sde: sde_lib.SDE, y: jax.Array) -> controllable.Replacement:
    """The sampler's per-step replacement that keeps the known part of the images y."""
    if self.task == 'inpaint':
      return controllable.inpainting(sde, y, self.mask)
    return controllable.colorization(sde, y)

  def describe(self) -> str:
    """What is kept, in words."""
    return f'mask {self.mask_name!r}' if self.task == 'inpaint' else 'the grey level kept'
