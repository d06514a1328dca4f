"""What travels between the grader and the student's process, and how.

The grader (trusted) sends *requests*: Python objects pickled (modules, optimisers, transitions,
numbers), with every tensor's bytes out of band and every ``torch.Generator`` as its state. The
student's process only ever sends back *plain data*: ``None``, booleans, numbers, strings,
lists, dicts and tensors, as a JSON header plus raw tensor bytes. The grader never unpickles
anything the student's process wrote, so nothing that process sends can run code in the grader;
every value is checked for size and shape as it is read (:func:`decode_plain`).

A frame on the socket is a 4-byte length followed by that many bytes.
"""
from __future__ import annotations

import io
import json
import os
import pickle
import select
import struct
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

MAX_FRAME = 1 << 30
"""Bytes in one frame at most (a relabelled batch of 1024 agents x 50 steps is about 170 MB)."""
MAX_HEADER = 64 << 20
"""Bytes of JSON in one frame at most."""
MAX_DEPTH = 40
"""Nesting depth of plain data at most."""

_DTYPES = {str(d).removeprefix("torch."): d for d in (
    torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.complex64, torch.complex128,
    torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.bool)}


class ProtocolError(Exception):
    """The other side sent something that is not a well-formed message."""


class ChannelClosed(Exception):
    """The other side closed its end (the student's process ended)."""


class ChannelTimeout(Exception):
    """No complete message arrived before the deadline."""


# --- frames --------------------------------------------------------------------------------------


def send_frame(fd: int, payload: bytes, deadline: float | None = None) -> None:
    """Write one frame, waiting at most until ``deadline`` for the other side to take it."""
    if len(payload) > MAX_FRAME:
        raise ProtocolError(f"a message of {len(payload)} bytes is larger than the {MAX_FRAME} bytes allowed")
    view = memoryview(struct.pack("!I", len(payload)) + payload)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            _, ready, _ = select.select([], [fd], [], timeout)
            if not ready:
                raise ChannelTimeout() from None
            continue
        except (BrokenPipeError, ConnectionResetError):
            raise ChannelClosed() from None
        view = view[written:]


def _read_exactly(fd: int, count: int, deadline: float | None) -> bytes:
    chunks, left = [], count
    while left:
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            raise ChannelTimeout()
        try:
            chunk = os.read(fd, min(left, 1 << 20))
        except BlockingIOError:
            continue
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            raise ChannelClosed()
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def recv_frame(fd: int, deadline: float | None = None) -> bytes:
    """One frame, waiting at most until ``deadline`` (``time.monotonic()``; None: for ever)."""
    (length,) = struct.unpack("!I", _read_exactly(fd, 4, deadline))
    if length > MAX_FRAME:
        raise ProtocolError(f"a message of {length} bytes is larger than the {MAX_FRAME} bytes allowed")
    return _read_exactly(fd, length, deadline)


# --- tensors out of band -------------------------------------------------------------------------


class _Tensors:
    """Collects tensors as (description, bytes); rebuilds them from a table and a buffer."""

    def __init__(self) -> None:
        self.table: list[list] = []
        self.parts: list[bytes] = []
        self.size = 0
        self._seen: dict[int, int] = {}

    def add(self, tensor: torch.Tensor) -> int:
        key = id(tensor)
        if key in self._seen:
            return self._seen[key]
        data = tensor.detach()
        if data.layout != torch.strided:
            data = data.to_dense()
        if data.is_conj():
            data = data.resolve_conj()
        if data.is_neg():
            data = data.resolve_neg()
        flat = data.to("cpu").contiguous().reshape(-1)
        raw = flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""
        dtype = str(flat.dtype).removeprefix("torch.")
        if dtype not in _DTYPES:
            raise TypeError(f"tensors of dtype {flat.dtype} cannot be sent")
        self.table.append([dtype, list(data.shape), str(tensor.device), bool(tensor.requires_grad), self.size, len(raw)])
        self.parts.append(raw)
        self.size += len(raw)
        index = len(self.table) - 1
        self._seen[key] = index
        return index

    def payload(self) -> bytes:
        return b"".join(self.parts)


def _rebuild_tensors(table: Any, raw: bytes, device_ok: Callable[[str], bool] = lambda d: True) -> list[torch.Tensor]:
    if not isinstance(table, list):
        raise ProtocolError("the tensor table is not a list")
    out = []
    for entry in table:
        if not (isinstance(entry, list) and len(entry) == 6):
            raise ProtocolError("a tensor description is malformed")
        dtype_name, shape, device, requires_grad, offset, nbytes = entry
        dtype = _DTYPES.get(dtype_name) if isinstance(dtype_name, str) else None
        if dtype is None:
            raise ProtocolError(f"unknown tensor dtype {dtype_name!r}")
        if not (isinstance(shape, list) and len(shape) <= 16 and all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s
                                                                     for s in shape)):
            raise ProtocolError("a tensor shape is malformed")
        numel = 1
        for s in shape:
            numel *= s
        itemsize = torch.empty((), dtype=dtype).element_size()
        if not (isinstance(offset, int) and isinstance(nbytes, int) and 0 <= offset and nbytes == numel * itemsize
                and offset + nbytes <= len(raw)):
            raise ProtocolError("a tensor's bytes do not match its shape")
        if numel == 0:
            tensor = torch.empty(shape, dtype=dtype)
        else:
            tensor = torch.frombuffer(bytearray(raw[offset:offset + nbytes]), dtype=torch.uint8).view(dtype).reshape(shape)
        if isinstance(device, str) and device != "cpu" and device_ok(device):
            tensor = tensor.to(device)
        if requires_grad is True and (dtype.is_floating_point or dtype.is_complex):
            tensor.requires_grad_(True)
        out.append(tensor)
    return out


def _pack(header: dict, tensors: _Tensors, extra: bytes = b"") -> bytes:
    head = json.dumps({**header, "tensors": tensors.table}, separators=(",", ":")).encode()
    return struct.pack("!II", len(head), len(extra)) + head + extra + tensors.payload()


def _unpack(frame: bytes) -> tuple[dict, bytes, bytes]:
    if len(frame) < 8:
        raise ProtocolError("a message is too short")
    head_len, extra_len = struct.unpack("!II", frame[:8])
    if head_len > MAX_HEADER or 8 + head_len + extra_len > len(frame):
        raise ProtocolError("a message's header is malformed")
    try:
        header = json.loads(frame[8:8 + head_len])
    except (ValueError, RecursionError) as err:
        raise ProtocolError(f"a message's header is not JSON ({type(err).__name__})") from None
    if not isinstance(header, dict):
        raise ProtocolError("a message's header is not an object")
    return header, frame[8 + head_len:8 + head_len + extra_len], frame[8 + head_len + extra_len:]


# --- requests: grader -> student's process (pickled, tensors out of band) -------------------------


class Handle:
    """An object that lives in the student's process (one of its instances), named by number."""

    def __init__(self, number: int) -> None:
        self.handle_number = number


def _rebuild_parameter(data: torch.Tensor, requires_grad: bool, grad: torch.Tensor | None) -> nn.Parameter:
    param = nn.Parameter(data.detach(), requires_grad=requires_grad)
    if grad is not None:
        param.grad = grad.detach()
    return param


class _RequestPickler(pickle.Pickler):
    def __init__(self, file, tensors: _Tensors, generators: list[torch.Generator]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.tensors, self.generators = tensors, generators

    def persistent_id(self, obj):  # noqa: ANN001
        if getattr(type(obj), "_grader_only", False):
            raise TypeError(f"a {type(obj).__name__} cannot be sent to the student's process")
        if isinstance(obj, torch.Tensor) and not isinstance(obj, nn.Parameter):
            return ("tensor", self.tensors.add(obj))
        if isinstance(obj, torch.Generator):
            self.generators.append(obj)
            return ("generator", str(obj.device), self.tensors.add(obj.get_state()))
        if isinstance(obj, Handle):
            return ("handle", obj.handle_number)
        return None

    def reducer_override(self, obj):  # noqa: ANN001
        if isinstance(obj, nn.Parameter):
            return _rebuild_parameter, (obj.detach(), obj.requires_grad, obj.grad)
        return NotImplemented


def encode_request(header: dict, objects: Any = None) -> tuple[bytes, list[torch.Generator]]:
    """A request frame: ``header`` (JSON) and ``objects`` (pickled). Returns the frame and the
    generators it carries, in the order the student's process reports their new states."""
    tensors, generators = _Tensors(), []
    buffer = io.BytesIO()
    _RequestPickler(buffer, tensors, generators).dump(objects)
    return _pack(header, tensors, buffer.getvalue()), generators


class _RequestUnpickler(pickle.Unpickler):
    def __init__(self, file, tensors: list[torch.Tensor], handles: Callable[[int], Any]) -> None:
        super().__init__(file)
        self.tensors, self.handles = tensors, handles
        self.generators: list[torch.Generator] = []

    def persistent_load(self, pid):  # noqa: ANN001
        kind = pid[0]
        if kind == "tensor":
            return self.tensors[pid[1]]
        if kind == "generator":
            generator = torch.Generator(device=pid[1])
            generator.set_state(self.tensors[pid[2]])
            self.generators.append(generator)
            return generator
        if kind == "handle":
            return self.handles(pid[1])
        raise pickle.UnpicklingError(f"unknown reference {kind!r}")


def decode_request(frame: bytes, handles: Callable[[int], Any]) -> tuple[dict, Any, list[torch.Generator]]:
    """(Student's process.) The header, the objects and the generators of a request."""
    header, extra, raw = _unpack(frame)
    tensors = _rebuild_tensors(header.pop("tensors", []), raw)
    unpickler = _RequestUnpickler(io.BytesIO(extra), tensors, handles)
    objects = unpickler.load()
    return header, objects, unpickler.generators


# --- plain data: student's process -> grader -----------------------------------------------------


def encode_plain(value: Any) -> bytes:
    """(Student's process.) A response frame. ``value`` must already be plain: dicts with string
    keys, lists, str, int, float, bool, None and tensors (see :func:`plain`)."""
    tensors = _Tensors()

    def walk(x: Any, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise ValueError("the value is nested too deeply")
        if x is None or isinstance(x, (bool, str)):
            return x
        if isinstance(x, int):
            return x if abs(x) < (1 << 63) else {"$bigint": str(x)}
        if isinstance(x, float):
            return x
        if isinstance(x, torch.Tensor):
            return {"$t": tensors.add(x)}
        if isinstance(x, list):
            return [walk(v, depth + 1) for v in x]
        if isinstance(x, dict):
            return {str(k): walk(v, depth + 1) for k, v in x.items()}
        raise TypeError(f"not plain data: {type(x).__name__}")

    return _pack({"value": walk(value, 0)}, tensors)


def decode_plain(frame: bytes, device_ok: Callable[[str], bool] = lambda d: True) -> Any:
    """(Grader.) The plain value in a response frame, checked: only JSON values and tensors."""
    header, _, raw = _unpack(frame)
    tensors = _rebuild_tensors(header.get("tensors", []), raw, device_ok)

    def walk(x: Any, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise ProtocolError("the value is nested too deeply")
        if x is None or isinstance(x, (bool, str, int, float)):
            return x
        if isinstance(x, list):
            return [walk(v, depth + 1) for v in x]
        if isinstance(x, dict):
            if set(x) == {"$t"}:
                index = x["$t"]
                if not (isinstance(index, int) and 0 <= index < len(tensors)):
                    raise ProtocolError("a tensor reference is out of range")
                return tensors[index]
            if set(x) == {"$bigint"} and isinstance(x["$bigint"], str) and len(x["$bigint"]) < 4000:
                try:
                    return int(x["$bigint"])
                except ValueError:
                    raise ProtocolError("a big integer is malformed") from None
            return {k: walk(v, depth + 1) for k, v in x.items()}
        raise ProtocolError(f"unexpected value of type {type(x).__name__}")

    try:
        return walk(header.get("value"), 0)
    except RecursionError:
        raise ProtocolError("the value is nested too deeply") from None
