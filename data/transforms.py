"""Pure transforms of one example: decoding, cropping and resizing, augmentation,
captions to tokens, and the map to model space."""

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from data import scaling
from data.common import Example
from data.text import Tokenizer, tokenize



def to_uint8_image(image: np.ndarray | bytes) -> np.ndarray:
  """A decoded tfds image as uint8 [H, W, C].

  `tfds.data_source` decodes Image features to arrays itself (with OpenCV, or PIL when
  OpenCV is missing); encoded bytes (e.g. read with `tfds.decode.SkipDecoding`) are decoded
  here with PIL.
  """
  if isinstance(image, bytes):
    with Image.open(io.BytesIO(image)) as decoded:
      image = np.asarray(decoded)
  image = np.asarray(image, np.uint8)
  return image[..., None] if image.ndim == 2 else image


def image_hw(image_size: int | Sequence[int]) -> tuple[int, int]:
  """(height, width) of an image size: a side (a square) or (height, width).

  Raises:
    ValueError: anything else, or a side below 1.
  """
  if isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool):
    hw = (int(image_size), int(image_size))
  elif (isinstance(image_size, Sequence) and len(image_size) == 2
        and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool)
                for s in image_size)):
    hw = (int(image_size[0]), int(image_size[1]))
  else:
    raise ValueError(f'an image size is a side or (height, width), got {image_size!r}')
  if min(hw) < 1:
    raise ValueError(f'an image size must be at least 1 pixel, got {image_size!r}')
  return hw


def resize(image: np.ndarray, *, image_size: int | Sequence[int],
           crop: int | None = None) -> np.ndarray:
  """Centre-crops to the output's aspect ratio and resizes with antialiased bilinear
  interpolation.

  Args:
    image: float32 [H, W, C].
    image_size: the output's side (a square) or (height, width).
    crop: height of the central region to keep first, its width by the output's aspect
      ratio (Song et al.'s 140 for CelebA); by default the largest one, so that images of
      another aspect ratio are cropped, not squashed.

  Returns:
    float32 [height, width, C]; the input itself when no resizing is needed.
  """
  out_h, out_w = image_hw(image_size)
  height, width, channels = image.shape
  if crop is None:  # the largest region of the output's aspect ratio
    crop_h = min(height, width * out_h // out_w)
  else:
    crop_h = crop
  crop_w = crop_h * out_w // out_h
  top, left = (height - crop_h) // 2, (width - crop_w) // 2
  # Crop before resizing (PIL's `box` would let the filter see pixels outside the crop).
  image = image[top:top + crop_h, left:left + crop_w]
  if (crop_h, crop_w) == (out_h, out_w):
    return image
  # PIL's float ('F') bilinear filter widens with the scale factor, as TF's antialias does.
  planes = [
      np.asarray(Image.fromarray(np.ascontiguousarray(image[..., k])).resize(
          (out_w, out_h), Image.Resampling.BILINEAR))
      for k in range(channels)
  ]
  return np.stack(planes, axis=-1)


def preprocess(record: dict[str, Any], *, image_size: int | Sequence[int], crop: int | None,
               caption_key: str = '') -> Example:
  """Decodes a tfds record.

  Args:
    record: as `tfds.data_source` decodes it.
    image_size: the output's side or (height, width).
    crop: as in `resize`.
    caption_key: the text feature to take captions from, '/' between nested names, e.g.
      'caption' or 'captions/text'; '' for none.

  Returns:
    image: float32 [height, width, C] in [0, 1].
    label: int32 [].
    captions: with caption_key, the record's captions as an object array [K] of bytes or
      str; a Text feature gives K = 1, a record without any captions the empty one.
  """
  image = scaling.from_uint8(to_uint8_image(record['image']))
  label = record.get('label', 0)  # unlabelled datasets get the null class 0 == num_classes
  example = {'image': resize(image, image_size=image_size, crop=crop),
             'label': np.asarray(label, np.int32)}
  if caption_key:
    captions = record_captions(record, caption_key)
    example['captions'] = captions if len(captions) else np.array([b''], dtype=object)
  return example


def record_captions(record: dict[str, Any], caption_key: str) -> np.ndarray:
  """A tfds record's captions under caption_key ('/' between nested names), an object
  array [K] of bytes or str (K = 1 for a Text feature, maybe 0 for a Sequence of Text)."""
  value = record
  for name in caption_key.split('/'):
    value = value[name]
  # A Sequence of Text decodes to a list or an array of bytes, a Text to bytes.
  return np.asarray(value, dtype=object).reshape(-1)


def augment(
    example: Example, rng: np.random.Generator, *, random_flip: bool,
    uniform_dequantization: bool, levels: int = 256,
) -> Example:
  """Random horizontal flip, then uniform dequantisation (x (levels - 1) + U[0, 1)) / levels
  of images of `levels` grey levels k / (levels - 1).

  An example with captions [K] (see `preprocess`) keeps one of them, drawn uniformly, as
  captions [1].
  """
  image = example['image']  # [H, W, C] in [0, 1]
  # Draw the coin whatever random_flip, so that the noise is the same with or without flips.
  flip = rng.random() < 0.5
  if random_flip and flip:
    image = image[:, ::-1]
  if uniform_dequantization:
    image = (image * (levels - 1) + rng.random(image.shape, dtype=np.float32)) / levels
  example = {**example, 'image': image}
  if 'captions' in example:
    # Drawn last, so that the images are the same with captions or without.
    k = rng.integers(len(example['captions']))
    example['captions'] = example['captions'][k:k + 1]
  return example


def tokenize_caption(example: Example, *, max_len: int, tokenizer: Tokenizer) -> Example:
  """Replaces an example's captions [K] by the tokens of the first one (see `tokenize`).

  Returns:
    The example without captions, with tokens int32 [max_len] and truncated bool [].
  """
  tokens, truncated = tokenize(example['captions'][:1], max_len=max_len, tokenizer=tokenizer)
  rest = {key: value for key, value in example.items() if key != 'captions'}
  return {**rest, 'tokens': tokens[0], 'truncated': truncated[0]}


def to_model_space(example: Example, *, centered: bool) -> Example:
  """Maps images from [0, 1] to model space ([-1, 1] when `centered`)."""
  return {**example, 'image': scaling.from_unit(example['image'], centered=centered)}
