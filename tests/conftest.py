"""Runs the suite on 4 forced CPU devices so multi-device code paths are exercised."""

import os

os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=4')
