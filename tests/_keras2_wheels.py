"""The Keras 2 source the study ran, read from its wheels (never installed).

``KERAS2_WHEELS`` names a directory holding ``Keras-2.2.4-*.whl`` and
``Keras-2.3.1-*.whl`` (``make test`` downloads them); without it the caller skips.
"""

import os
import zipfile
from pathlib import Path

import pytest


def keras2_source(version: str, member: str) -> str:
    """The text of ``member`` (e.g. ``keras/optimizers.py``) in Keras ``version``."""
    folder = os.environ.get("KERAS2_WHEELS")
    if not folder:
        pytest.skip("KERAS2_WHEELS is not set (a directory with the Keras 2 wheels)")
    wheels = sorted(Path(folder).glob(f"Keras-{version}-*.whl"))
    if not wheels:
        pytest.skip(f"no Keras {version} wheel in {folder}")
    with zipfile.ZipFile(wheels[0]) as wheel:
        return wheel.read(member).decode()
