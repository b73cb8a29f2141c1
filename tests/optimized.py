"""Compiler options for the few tests whose time is running, not compiling.

The suite compiles at XLA's -O0 (tests/conftest.py): it builds hundreds of small programs
and runs each a few times. A long loop of small elementwise ops runs 3-4x slower at -O0
(20,000 Euler-Maruyama paths of 4,000 steps: 15 s against 4 s), so the tests that run one
jit it with `jax.jit(fn, compiler_options=OPTIMIZED)`.
"""

OPTIMIZED = {'xla_backend_optimization_level': '2'}
