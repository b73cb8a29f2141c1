"""The installed project is the source tree: every package of it is listed in pyproject.toml
(a non-editable install ships only those, and a config directory left out of the list
imports here but not there)."""

import pathlib
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_every_package_is_listed():
  listed = set(tomllib.loads((ROOT / 'pyproject.toml').read_text())['tool']['setuptools']
               ['packages'])
  top = {name.split('.')[0] for name in listed}
  found = {'.'.join(init.parent.relative_to(ROOT).parts)
           for name in top for init in (ROOT / name).rglob('__init__.py')}
  assert found == listed
