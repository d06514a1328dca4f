"""Small assertion helpers whose failure messages say what was expected and what came back."""
from __future__ import annotations

import torch


def devices() -> list[torch.device]:
    """CPU, plus the first CUDA device where there is one: checks run on both."""
    found = [torch.device("cpu")]
    if torch.cuda.is_available():
        found.append(torch.device("cuda"))
    return found


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def expect_tensor(value, what: str, shape: tuple | None = None, dtype: torch.dtype | None = None,
                  device: torch.device | None = None) -> torch.Tensor:
    """``value`` must be a tensor with the given shape, dtype and device."""
    expect(isinstance(value, torch.Tensor), f"{what}: expected a torch.Tensor, got {type(value).__name__}")
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


def generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)
