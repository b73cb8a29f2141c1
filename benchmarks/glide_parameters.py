"""Parameters of scorelab's GLIDE configs against GLIDE's released models.

For configs/text/glide_base64.py and configs/text/glide_upsample256.py: scorelab's count,
the task's parameter trees initialised under `jax.eval_shape` as tests/configs/test_configs.py's
count_parameters does (nothing is materialised), split into the score network ('score')
and the text encoder ('text'); and GLIDE's, from its own PyTorch code
(openai/glide-text2im, `create_model` of `model_and_diffusion_defaults()` and of
`model_and_diffusion_defaults_upsampler()`), built on torch's 'meta' device (shapes only)
in the peer interpreter and split into the text transformer (`transformer`,
`token_embedding`, `positional_embedding`, `padding_embedding`, `final_ln`,
`transformer_proj`) and the rest. A third row each counts the text layers inside the
U-Net: the attention blocks' `encoder_kv` (both), and ours' pooled projection to the time
embedding, which GLIDE counts as `transformer_proj` in its text part. When GLIDE's BPE
tokenizer cannot be loaded (its vocabulary file or the `regex` package missing), a stub
with GPT-2's 50,257 tokens stands in; the table says so.

--glide-src is the folder that holds the `glide_text2im` package, e.g. extracted from the
repository fetched as a git directory:

  mkdir -p /tmp/glide_src && git --git-dir=GIT_DIR archive HEAD glide_text2im \\
      | tar -x -C /tmp/glide_src
  python benchmarks/glide_parameters.py --glide-src /tmp/glide_src \\
      --peer-python ~/peervenv/bin/python

Without --glide-src the GLIDE columns are left out (with a note).
"""

import argparse
import importlib
import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONFIGS = {'base64': 'text/glide_base64.py', 'upsample256': 'text/glide_upsample256.py'}

# Runs in the peer interpreter (torch): GLIDE's counts as JSON on stdout. argv[1]: the folder
# holding the glide_text2im package.
PEER = r'''
import inspect, json, sys, types
import torch
torch.set_num_threads(1)
sys.path.insert(0, sys.argv[1])
stubbed = False
try:
  from glide_text2im.tokenizer import bpe
  bpe.get_encoder()
except (ImportError, OSError):  # no regex package, or no vocabulary file
  stubbed = True
  class _Encoder:
    n_vocab = 50257  # GPT-2's BPE vocabulary
  bpe = types.ModuleType('glide_text2im.tokenizer.bpe')
  bpe.get_encoder = _Encoder
  sys.modules['glide_text2im.tokenizer.bpe'] = bpe
from glide_text2im import model_creation as mc
TEXT = ('transformer.', 'token_embedding.', 'positional_embedding', 'padding_embedding',
        'final_ln.', 'transformer_proj.')
accepts = set(inspect.signature(mc.create_model).parameters)
out = {'stubbed_tokenizer': stubbed}
for name, defaults in (('base64', mc.model_and_diffusion_defaults()),
                       ('upsample256', mc.model_and_diffusion_defaults_upsampler())):
  with torch.device('meta'):
    model = mc.create_model(**{k: v for k, v in defaults.items() if k in accepts})
  sizes = {n: p.numel() for n, p in model.named_parameters()}
  text = sum(s for n, s in sizes.items() if n.startswith(TEXT))
  out[name] = {'total': sum(p.numel() for p in model.parameters()), 'text': text,
               'rest': sum(sizes.values()) - text,
               'encoder_kv': sum(s for n, s in sizes.items() if '.encoder_kv.' in n),
               'transformer_proj': sum(s for n, s in sizes.items()
                                       if n.startswith('transformer_proj.'))}
print(json.dumps(out))
'''


def scorelab_counts(relative_path: str) -> dict[str, int]:
  """Parameters of a config's task by tree, as tests/configs/test_configs.py builds and
  counts them."""
  import jax  # noqa: PLC0415

  from run_lib import builder  # noqa: PLC0415

  module = importlib.import_module('configs.' + relative_path[:-3].replace('/', '.'))
  task = builder.create_task(module.get_config())
  config = module.get_config()
  shape = (config.data.image_size, config.data.image_size, config.data.num_channels)
  trees = jax.eval_shape(lambda: task.init(jax.random.key(0), shape))
  counts = {name: sum(leaf.size for leaf in jax.tree.leaves(tree))
            for name, tree in trees.items()}
  counts['total'] = sum(counts.values())
  flat = jax.tree_util.tree_flatten_with_path(trees['score'])[0]
  path_of = lambda path: '/'.join(str(getattr(k, 'key', k)) for k in path)  # noqa: E731
  counts['encoder_kv'] = sum(leaf.size for path, leaf in flat if 'encoder_kv' in path_of(path))
  counts['pooled_projection'] = sum(leaf.size for path, leaf in flat
                                    if 'pooled_projection' in path_of(path))
  return counts


def glide_counts(peer_python: str, glide_src: str) -> dict:
  """GLIDE's counts, from its own code run by the peer interpreter."""
  if not (pathlib.Path(glide_src) / 'glide_text2im' / 'model_creation.py').exists():
    raise SystemExit(f'--glide-src {glide_src!r} holds no glide_text2im/model_creation.py')
  result = subprocess.run([peer_python, '-c', PEER, glide_src], capture_output=True,
                          text=True, check=False)
  if result.returncode:
    raise SystemExit(f'the peer ({peer_python}) failed:\n{result.stderr}')
  return json.loads(result.stdout)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--glide-src', default=None,
                      help='folder holding the glide_text2im package; omit to skip GLIDE')
  parser.add_argument('--peer-python', default=os.path.expanduser('~/peervenv/bin/python'),
                      help='an interpreter with torch (never the project one)')
  args = parser.parse_args()
  glide = glide_counts(args.peer_python, args.glide_src) if args.glide_src else None
  ours = {name: scorelab_counts(path) for name, path in CONFIGS.items()}

  columns = ['config', 'ours total', 'ours score', 'ours text']
  if glide:
    columns += ['GLIDE total', 'GLIDE text', 'GLIDE rest']
  print('| ' + ' | '.join(columns) + ' |')
  print('|---' * len(columns) + '|')
  for name, path in CONFIGS.items():
    row = [f'configs/{path}', *(f'{ours[name][k]:,}' for k in ('total', 'score', 'text'))]
    if glide:
      row += [f'{glide[name][k]:,}' for k in ('total', 'text', 'rest')]
    print('| ' + ' | '.join(row) + ' |')

  print('\nText layers inside the U-Net (in "score" / "rest" above, but for GLIDE\'s '
        'transformer_proj, in its "text"):')
  for name in CONFIGS:
    line = (f'- {name}: ours encoder_kv {ours[name]["encoder_kv"]:,}, pooled_projection '
            f'{ours[name]["pooled_projection"]:,}')
    if glide:
      line += (f'; GLIDE encoder_kv {glide[name]["encoder_kv"]:,}, transformer_proj '
               f'{glide[name]["transformer_proj"]:,}')
    print(line)
  if glide is None:
    print('\nGLIDE columns skipped: pass --glide-src, the folder holding the glide_text2im '
          'package (see the docstring).')
  elif glide['stubbed_tokenizer']:
    print("\nGLIDE's BPE tokenizer could not be loaded: counted with a stub of GPT-2's "
          '50,257 tokens.')


if __name__ == '__main__':
  main()
