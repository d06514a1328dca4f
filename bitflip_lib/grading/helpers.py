"""Small assertion helpers whose failure messages say what was expected and what came back.

They run in the grader, on values the student's process sent back (see
:mod:`bitflip_lib.grading.remote`).
"""
from __future__ import annotations

import torch

from bitflip_lib.grading.examples import generator  # noqa: F401 - the graders call helpers.generator
from bitflip_lib.grading.remote import kind


_cuda_usable = True


def set_cuda_usable(usable: bool) -> None:
    """(The runner.) Whether the student's process of the running check can use CUDA: a process
    forked from one that already used CUDA cannot, and its checks then run on the CPU only."""
    global _cuda_usable
    _cuda_usable = usable


def devices() -> list[torch.device]:
    """CPU, plus the first CUDA device where there is one: checks run on both."""
    found = [torch.device("cpu")]
    if _cuda_usable and torch.cuda.is_available():
        found.append(torch.device("cuda"))
    return found


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def expect_tensor(value, what: str, shape: tuple | None = None, dtype: torch.dtype | None = None,
                  device: torch.device | None = None) -> torch.Tensor:
    """``value`` must be a tensor with the given shape, dtype and device."""
    expect(isinstance(value, torch.Tensor), f"{what}: expected a torch.Tensor, got {kind(value)}")
    if shape is not None:
        expect(tuple(value.shape) == tuple(shape), f"{what}: expected shape {tuple(shape)}, got {tuple(value.shape)}")
    if dtype is not None:
        expect(value.dtype == dtype, f"{what}: expected dtype {dtype}, got {value.dtype}")
    if device is not None:
        expect(value.device.type == torch.device(device).type, f"{what}: expected a tensor on {device}, got one on {value.device}")
    return value


def expect_close(actual, expected: torch.Tensor, what: str, atol: float = 1e-6, rtol: float = 1e-5) -> None:
    """Same shape and values (within tolerance); the message shows the first mismatch."""
    actual = expect_tensor(actual, what, shape=expected.shape)
    a = actual.detach().to("cpu", torch.float64)
    e = expected.detach().to("cpu", torch.float64)
    bad = ~torch.isclose(a, e, atol=atol, rtol=rtol)
    if bool(bad.any()):
        index = tuple(int(i) for i in bad.nonzero()[0])
        where = f" at index {index}" if index else ""
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {bad.numel()} values differ; first{where}: expected {e[index].item():.6g}, got {a[index].item():.6g}"
        )


def expect_equal(actual, expected: torch.Tensor, what: str) -> None:
    """Exactly equal values (after moving both to the CPU)."""
    expect_close(actual, expected, what, atol=0.0, rtol=0.0)


