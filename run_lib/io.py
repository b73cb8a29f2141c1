"""Files the job writes: images, grids, trajectory strips, logs and JSON."""

import json
import pathlib
import time

import jax
import numpy as np
import tensorboardX
import tqdm
from PIL import Image, ImageDraw, ImageFont, features


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


def save_captioned_png(path: pathlib.Path, grid: np.ndarray, captions, *, scale: int = 1,
                       tile: int, pad: int = 1) -> None:
  """A grid of `image_grid` (rows of tiles of side `tile`), scaled, with one caption
  written to the right of each row, black on white."""
  picture = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).convert('RGB')
  picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
  # Text a quarter of a tile high; without FreeType, PIL's fixed 11-pixel bitmap font.
  size = max(11, tile * scale // 4)
  font = (ImageFont.load_default(size=size) if features.check('freetype2')
          else ImageFont.load_default())
  measure = ImageDraw.Draw(picture)
  width = max(int(measure.textlength(c, font=font)) for c in captions) + 8
  captioned = Image.new('RGB', (picture.width + width, picture.height), 'white')
  captioned.paste(picture, (0, 0))
  draw = ImageDraw.Draw(captioned)
  for row, caption in enumerate(captions):
    middle = (pad + row * (tile + pad) + tile / 2) * scale
    draw.text((picture.width + 4, middle), caption, fill='black', font=font, anchor='lm')
  path.parent.mkdir(parents=True, exist_ok=True)
  captioned.save(path)


def png_scale(height: int) -> int:
  """The enlargement of PNGs of images `height` pixels high (tiny images are unreadable)."""
  return max(1, 128 // height)


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


def cascade_strip(stages: list[np.ndarray], n: int) -> np.ndarray:
  """The first n samples of each stage of a cascade, one row per stage (base first), each
  stage's images enlarged (nearest) to the final size.

  Args:
    stages: uint8 [N, H_k, W_k, C] per stage.
  """
  height, width = stages[-1].shape[1:3]
  nearest = lambda images: images[:n][:, (np.arange(height) * images.shape[1]) // height][
      :, :, (np.arange(width) * images.shape[2]) // width]
  rows = [nearest(images) for images in stages]
  return image_grid(np.concatenate(rows), columns=min(n, len(stages[-1])))


def write_json(path: pathlib.Path, value) -> None:
  """Atomically: a preempted job never leaves half a file."""
  tmp = path.with_suffix('.tmp')
  tmp.write_text(json.dumps(value, indent=2))
  tmp.rename(path)


class Log:
  """Scalars to TensorBoard and workdir/log.jsonl (process 0), and a progress bar of the
  steps. With a time budget (training.max_minutes) the bar shows the budget's remaining
  time instead of an ETA to n_iters, which the budget may end long before."""

  def __init__(self, workdir: pathlib.Path, start: int, total: int, *,
               max_minutes: float = 0.0):
    self.main = jax.process_index() == 0
    self.started = time.monotonic()
    self.budget = 60.0 * max_minutes
    self.postfix: dict[str, str] = {}
    bar_format = ('{desc}{percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}, '
                  '{rate_fmt}{postfix}]') if self.budget > 0 else None
    self.bar = tqdm.tqdm(initial=start, total=total, disable=not self.main, unit='step',
                         dynamic_ncols=True, bar_format=bar_format)
    self.writer = tensorboardX.SummaryWriter(str(workdir / 'tensorboard')) if self.main else None
    self.jsonl = open(workdir / 'log.jsonl', 'a') if self.main else None

  def out_of_time(self) -> bool:
    """Whether the time budget is spent."""
    return self.budget > 0 and time.monotonic() - self.started > self.budget

  def advance(self, steps: int) -> None:
    """Counts steps done; shows the budget left."""
    if self.budget > 0:
      left = max(0, int(self.budget - (time.monotonic() - self.started)))
      self.postfix['budget left'] = f'{left // 60:d}:{left % 60:02d}'
      self.bar.set_postfix(self.postfix, refresh=False)
    self.bar.update(steps)

  def scalars(self, step: int, values: dict[str, float]) -> None:
    if not self.main:
      return
    for key, value in values.items():
      self.writer.add_scalar(key, value, step)
    self.jsonl.write(json.dumps({'step': step, **values}) + '\n')
    self.jsonl.flush()
    self.postfix.update({k: f'{v:.4g}' for k, v in values.items() if k in ('loss',)})
    self.bar.set_postfix(self.postfix)

  def close(self) -> None:
    self.bar.close()
    if self.main:
      self.writer.close()
      self.jsonl.close()
