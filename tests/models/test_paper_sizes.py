"""Parameter counts of the paper configurations, without allocating them (jax.eval_shape).

Expected numbers are those of the published implementation (yang-song/score_sde and
its PyTorch port, which agree) for the same configuration, counted by instantiating
those networks; NCSNv2 follows the original NCSNv2 code (ermongroup/ncsnv2, and the
PyTorch port), whose third RefineNet block has nf channels (score_sde's JAX copy has 2 nf).

NCSN (v1) cannot be built from score_sde as published: its numbers are those of the
original NCSN code, ermongroup/ncsn's CondRefineNetDilated, with as many noise levels
(its third RefineNet block has nf channels too). score_sde's JAX NCSN patched to run
(num_classes = num_scales, `self.normalization()(h, y)` in ConditionalResidualBlock's
down branch) has 2 nf there: 34,428,675 / 44,828,931 / 57,384,195 for 10 / 232 / 500
levels, 4,276,480 + 3,456 L more (the wider block and its 9 nf more norm channels).
"""

import jax
import jax.numpy as jnp
import pytest

from models import get_model

DDPMPP = dict(fir=False, progressive_input='none', embedding_type='positional')
NCSNPP_HIGH_RES = dict(dropout=0.0, progressive='output_skip', progressive_input='input_skip')

PAPER_SIZES = [
    # (label, model, options, image size, parameters)
    ('NCSN++ CIFAR-10 (continuous)', 'ncsnpp', {}, 32, 62_758_915),
    ('NCSN++ CIFAR-10 (discrete)', 'ncsnpp', dict(embedding_type='positional'), 32, 62_693_251),
    ('NCSN++ deep CIFAR-10', 'ncsnpp', dict(num_res_blocks=8), 32, 107_587_075),
    ('NCSN++ deep CIFAR-10 (VP/sub-VP)', 'ncsnpp',
     dict(num_res_blocks=8, embedding_type='positional'), 32, 107_521_411),
    ('DDPM++ CIFAR-10', 'ncsnpp', DDPMPP, 32, 61_804_419),
    ('DDPM++ deep CIFAR-10', 'ncsnpp', dict(DDPMPP, num_res_blocks=8), 32, 106_632_579),
    ('NCSN++ 256 (CelebA-HQ, FFHQ, LSUN)', 'ncsnpp',
     dict(NCSNPP_HIGH_RES, ch_mult=(1, 1, 2, 2, 2, 2, 2), num_res_blocks=2), 256, 65_574_549),
    ('NCSN++ 1024 (FFHQ, CelebA-HQ)', 'ncsnpp',
     dict(NCSNPP_HIGH_RES, nf=16, ch_mult=(1, 2, 4, 8, 16, 32, 32, 32), num_res_blocks=1),
     1024, 105_785_896),
    ('DDPM CIFAR-10', 'ddpm', {}, 32, 35_218_947),
    ('DDPM 256 (LSUN, CelebA-HQ)', 'ddpm', dict(ch_mult=(1, 1, 2, 2, 4, 4), dropout=0.0), 256,
     111_569_923),
    ('NCSNv2 CIFAR-10 / CelebA 64', 'ncsnv2_64', {}, 32, 29_694_083),
    ('NCSNv2 LSUN 128', 'ncsnv2_128', {}, 128, 83_445_379),
    ('NCSN CIFAR-10 / CelebA, 10 levels', 'ncsn', {'num_levels': 10}, 32, 30_117_635),
    ('NCSN CIFAR-10, 232 levels', 'ncsn', {'num_levels': 232}, 32, 39_750_659),
    ('NCSN CelebA 64, 500 levels', 'ncsn', {'num_levels': 500}, 64, 51_379_715),
]


def count_parameters(model, image_size: int, channels: int = 3) -> int:
  shapes = jax.eval_shape(lambda: model.init(
      jax.random.key(0), jnp.zeros((1, image_size, image_size, channels)), jnp.ones((1,))))
  return sum(leaf.size for leaf in jax.tree.leaves(shapes['params']))


@pytest.mark.parametrize('label, name, options, size, expected', PAPER_SIZES,
                         ids=[row[0] for row in PAPER_SIZES])
def test_parameter_count_equals_the_published_implementation(label, name, options, size,
                                                             expected):
  assert count_parameters(get_model(name)(**options), size) == expected
