"""What the job trains and samples: pure objects over explicit arguments (no ConfigDict).

Every task has

  name: str                                  its config name (training.task)
  batch_keys: tuple[str, ...]                the keys of the dict batch its loss reads
  samples: bool                              whether it is a generative model to sample
  metrics: tuple[str, ...]                   the eval.metrics that apply to it
  init(rng, image_shape) -> {name: tree}     its named parameter trees
  loss(params, batch, rng, *, train, weights=None) -> scalar

`train=True` is the training loss (dropout, label dropout); `train=False` the test
loss, per-example `weights` masking padded examples. run_lib's train loop, checkpoints
and evaluation know tasks only through this; each task adds the functions its users
need (`Diffusion.score_fn`, `NoisyClassifier.logits_fn`, ...).

  diffusion         a score network, optionally class- or text-conditional (classifier-free
                    guidance; a jointly trained text encoder, GLIDE)
  super_resolution  a diffusion model of images given a low-resolution one, with noise-
                    conditioning augmentation: a cascade's upsampler
  classifier        a noise-conditional classifier (classifier guidance)
"""

from tasks.classifier import NoisyClassifier
from tasks.diffusion import Caption, Diffusion
from tasks.super_resolution import SuperResolution

TASKS = {'diffusion': Diffusion, 'super_resolution': SuperResolution,
         'classifier': NoisyClassifier}

__all__ = ['TASKS', 'Caption', 'Diffusion', 'NoisyClassifier', 'SuperResolution']
