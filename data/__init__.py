"""Data: datasets, their input pipeline, captions as tokens, and the data's scales.

  pipeline    get_dataset -> ImageDataset: a split as deterministic per-step training
              batches and ordered evaluation epochs (grain), sharded over hosts
  sources     tfds datasets opened for random access (tfds.data_source)
  bundled     the datasets that ship with scorelab: the 8x8 digits and the digit pairs
  folders     a folder of the user's own images
  transforms  decoding, resizing, flips, dequantisation, captions to tokens
  text        captions as tokens: the byte, word and BPE tokenizers
  scaling     model space <-> [0, 1] <-> uint8 pixels <-> grey levels: what data.centered
              and data.levels mean, everywhere
  common      DatasetError and what the modules share

Import the module you need (`from data import pipeline, scaling`): the networks and the
mathematics use `scaling` alone, without loading tfds and grain.
"""
