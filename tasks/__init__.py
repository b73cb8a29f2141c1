"""What the job trains and samples: pure objects over explicit arguments (no ConfigDict).

Every task has

  name: str                                  its config name (training.task)
  batch_keys: tuple[str, ...]                the keys of the dict batch its loss reads
  samples: bool                              whether it is a generative model to sample
  metrics: tuple[str, ...]                   the eval.metrics that apply to it
  init(rng, image_shape) -> {name: tree}     its named trainable parameter trees
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
  autoencoder       latent diffusion's first stage: a KL autoencoder trained by LDM's
                    reconstruction, KL, LPIPS and PatchGAN losses

A task may also have (one without them has no frozen trees, only the term 'loss', and a
loss that ignores the step)

  frozen: tuple[str, ...]                    trees the job loads into params itself (e.g.
                                             pretrained LPIPS weights) and never trains: no
                                             gradient, not in the optimiser, not in init
  loss_terms(params, batch, rng, *, train, weights=None, step=None) -> {name: scalar}
                                             every scalar of the objective, all worth
                                             logging; 'loss' is the one minimised, loss(...)

and then its `loss` takes `step` too: the training step (an int32 scalar), which terms that
switch on during training read (the autoencoder's GAN, from disc_start); step=None, as in
evaluation, is documented by the task. Training takes one gradient of 'loss' over every
trainable tree, with one optimiser.
"""

from tasks.autoencoder import Autoencoder
from tasks.classifier import NoisyClassifier
from tasks.diffusion import Caption, Diffusion
from tasks.super_resolution import SuperResolution

TASKS = {'diffusion': Diffusion, 'super_resolution': SuperResolution,
         'classifier': NoisyClassifier, 'autoencoder': Autoencoder}

__all__ = ['TASKS', 'Autoencoder', 'Caption', 'Diffusion', 'NoisyClassifier', 'SuperResolution']
