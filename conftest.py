"""Shared pytest set-up (tests and notebooks): GPU tests run only where CUDA exists; quick mode by default."""
from __future__ import annotations

import os

import pytest
import torch

# Notebooks executed by nbval and smoke runs read this switch to shrink their budgets.
os.environ.setdefault("BITFLIP_QUICK", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device; none here")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)
