"""Pure transforms of one example: decoding, cropping and resizing, augmentation,
captions to tokens, and the map to model space."""

import io
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


def resize(image: np.ndarray, *, image_size: int, crop: int | None = None) -> np.ndarray:
  """Centre-crops to a square and resizes with antialiased bilinear interpolation.

  Args:
    image: float32 [H, W, C].
    image_size: side of the output.
    crop: side of the central square to keep first (Song et al.'s 140 for CelebA); by
      default the largest one, so that non-square images are cropped, not squashed.

  Returns:
    float32 [image_size, image_size, C]; the input itself when no resizing is needed.
  """
  height, width, channels = image.shape
  side = min(height, width) if crop is None else crop
  top, left = (height - side) // 2, (width - side) // 2
  # Crop before resizing (PIL's `box` would let the filter see pixels outside the crop).
  image = image[top:top + side, left:left + side]
  if side == image_size:
    return image
  # PIL's float ('F') bilinear filter widens with the scale factor, as TF's antialias does.
  planes = [
      np.asarray(Image.fromarray(np.ascontiguousarray(image[..., k])).resize(
          (image_size, image_size), Image.Resampling.BILINEAR))
      for k in range(channels)
  ]
  return np.stack(planes, axis=-1)


def preprocess(record: dict[str, Any], *, image_size: int, crop: int | None,
               caption_key: str = '') -> Example:
  """Decodes a tfds record.

  Args:
    record: as `tfds.data_source` decodes it.
    image_size: side of the output image.
    crop: as in `resize`.
    caption_key: the text feature to take captions from, '/' between nested names, e.g.
      'caption' or 'captions/text'; '' for none.

  Returns:
    image: float32 [image_size, image_size, C] in [0, 1].
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
