"""GUI tests run offscreen (see tests/conftest.py) with pytest-qt's qapp/qtbot."""

import pytest

pytestmark = pytest.mark.gui
