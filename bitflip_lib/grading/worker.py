"""The student's process: it runs the student's code on inputs the grader sends, and nothing else.

It holds no verdict and no expected value. Each request names a student function (or a method
of an object the student's code made) and carries its arguments; the answer is plain data (see
:mod:`bitflip_lib.grading.wire`): the return value, what the call changed in its arguments,
what it printed, and whether it reached the library's own implementation of the exercise.
The grader checks all of it.

Before the student's code is loaded, the library's reference implementations of the exercise
(:attr:`Exercise.references`) are *poisoned*: their code objects are swapped for a tripwire,
so the reference cannot compute anything here, however it is reached (an import, an alias, a
wrapper, ``getattr``, a subclass calling ``super()``); calling it is reported by name.
"""
from __future__ import annotations

import builtins
import dataclasses
import functools
import importlib
import inspect
import os
import sys
import types
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from bitflip_lib.grading import wire
from bitflip_lib.grading.capture import Capture
from bitflip_lib.grading.errors import describe_error
from bitflip_lib.grading.notebook import GradedCell, LoadError, exec_cells

MAX_NODES = 200_000
"""Values (tensors, numbers, ...) in one answer at most."""


class ReferenceImplementationUsed(BaseException):
    """Raised by a poisoned reference implementation (a BaseException, so that ``except
    Exception`` in student code does not hide it; it is reported either way)."""


_LIBRARY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the bitflip_lib package's folder
_reached: list[str] = []
_poisoned_objects: dict[int, str] = {}  # id(function or class) -> label
_original_codes: dict[int, tuple[weakref.ref, str]] = {}
"""id(code object before poisoning) -> (a weak reference to it, label). Weak: once poisoned, a
reference's code lives on only where the student's code had copied it (a notebook's kernel ran
before the poison), and no module of this process hands it back."""


def _trip(label: str) -> None:
    _reached.append(label)
    raise ReferenceImplementationUsed(f"{label} is the library's own answer to this exercise")


def _tripwire_code(label: str, free: int) -> types.CodeType:
    names = [f"_cell{i}" for i in range(free)]
    keep = f"        (lambda: ({', '.join(names)},))\n" if names else ""
    source = (f"def _outer({', '.join(names)}):\n"
              "    def tripwire(*args, **kwargs):\n"
              f"{keep}"
              f"        __import__('bitflip_lib.grading.worker', fromlist=['_trip'])._trip({label!r})\n"
              "    return tripwire\n")
    scope: dict = {}
    exec(compile(source, f"<the library's {label}, disabled while grading>", "exec"), scope)  # noqa: S102
    return scope["_outer"](*([None] * free)).__code__


def _poison_function(function: types.FunctionType, label: str, seen: set[int]) -> None:
    if id(function) in seen or not isinstance(function, types.FunctionType):
        return
    seen.add(id(function))
    inner = [getattr(function, "__wrapped__", None)]
    inner += [cell.cell_contents for cell in (function.__closure__ or ()) if _cell_filled(cell)]
    if function.__code__.co_filename.startswith(_LIBRARY):  # not a decorator's code, which other functions share
        _original_codes[id(function.__code__)] = (weakref.ref(function.__code__), label)
    function.__code__ = _tripwire_code(label, len(function.__code__.co_freevars))
    _poisoned_objects[id(function)] = label
    for obj in inner:  # a decorator's wrapped function (e.g. @torch.no_grad) is the real body
        if isinstance(obj, types.FunctionType) and obj.__module__ == function.__module__:
            _poison_function(obj, label, seen)


def _cell_filled(cell) -> bool:  # noqa: ANN001
    try:
        cell.cell_contents  # noqa: B018
    except ValueError:
        return False
    return True


def poison(references: tuple[str, ...] | list[str]) -> None:
    """Disable the library's reference implementations named ``"module:attribute"``."""
    seen: set[int] = set()
    for spec in references:
        module_name, _, attribute = spec.partition(":")
        obj: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            obj = inspect.getattr_static(obj, part) if isinstance(obj, type) else getattr(obj, part)
        label = f"{module_name}.{attribute}"
        if isinstance(obj, type):
            _poisoned_objects[id(obj)] = label
            for member in list(vars(obj).values()):
                for function in _functions_of(member):
                    _poison_function(function, label, seen)
        else:
            for function in _functions_of(obj):
                _poison_function(function, label, seen)


def _functions_of(member: Any) -> list[types.FunctionType]:
    if isinstance(member, (staticmethod, classmethod)):
        member = member.__func__
    if isinstance(member, property):
        return [f for f in (member.fget, member.fset, member.fdel) if isinstance(f, types.FunctionType)]
    return [member] if isinstance(member, types.FunctionType) else []


def reference_reached_by(obj: Any, depth: int = 0, seen: set[int] | None = None) -> str | None:
    """The reference implementation ``obj`` is, wraps, or whose code it holds, if any.

    Catches what poisoning cannot when the student's code ran before the poison (a notebook
    kernel): a function made from the reference's own code object, ``functools.partial``,
    ``__wrapped__``, bound methods, and functions and classes that a function's code names.
    """
    seen = set() if seen is None else seen
    if obj is None or id(obj) in seen or depth > 6:
        return None
    seen.add(id(obj))
    if id(obj) in _poisoned_objects:
        return _poisoned_objects[id(obj)]
    if isinstance(obj, functools.partial):
        return reference_reached_by(obj.func, depth + 1, seen)
    if isinstance(obj, types.MethodType):
        return reference_reached_by(obj.__func__, depth + 1, seen)
    if isinstance(obj, type):
        for base in obj.__mro__[1:]:
            if id(base) in _poisoned_objects and not _overrides_everything(obj, base):
                return _poisoned_objects[id(base)]
        for member in vars(obj).values():
            for function in _functions_of(member):
                found = reference_reached_by(function, depth + 1, seen)
                if found:
                    return found
        return None
    if isinstance(obj, types.FunctionType):
        found = _code_reaches(obj.__code__)
        if found:
            return found
        for inner in [getattr(obj, "__wrapped__", None), *(c.cell_contents for c in (obj.__closure__ or ()) if _cell_filled(c))]:
            found = reference_reached_by(inner, depth + 1, seen)
            if found:
                return found
        for name in _names(obj.__code__):
            value = obj.__globals__.get(name)
            if isinstance(value, (types.FunctionType, type, functools.partial, types.MethodType)):
                found = reference_reached_by(value, depth + 1, seen)
                if found:
                    return found
    return None


def _overrides_everything(cls: type, base: type) -> bool:
    own = {name for klass in cls.__mro__ if klass is not base and base in klass.__mro__ for name in vars(klass)}
    return all(name in own for name, member in vars(base).items() if _functions_of(member))


def _code_reaches(code: types.CodeType) -> str | None:
    original = _original_codes.get(id(code))
    if original is not None and original[0]() is code:
        return original[1]
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            found = _code_reaches(const)
            if found:
                return found
    return None


def _names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


def take_reached() -> list[str]:
    found = list(dict.fromkeys(_reached))
    _reached.clear()
    return found


# --- values the student's code returns, as plain data ---------------------------------------------


class _Plain:
    """Converts student values to plain data; objects the call received are named by position."""

    def __init__(self, received: list[tuple[Any, Any]] = ()) -> None:
        self.received = {id(obj): path for path, obj in received if not isinstance(obj, (int, float, str, bool, type(None)))}
        self.nodes = 0

    def __call__(self, x: Any, depth: int = 0) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ValueError(f"the value holds more than {MAX_NODES} parts")
        if id(x) in self.received:
            return {"$arg": self.received[id(x)]}
        if x is None or isinstance(x, (bool, str)):
            return x if not isinstance(x, str) else x[:10_000]
        if isinstance(x, int):
            return int(x)
        if isinstance(x, float):
            return float(x)
        if depth > 12:
            return {"$other": type(x).__name__}
        if isinstance(x, torch.Tensor):
            return {"$tensor": x.detach(), "grad_fn": x.grad_fn is not None, "requires_grad": bool(x.requires_grad)}
        if isinstance(x, tuple):
            return {"$tuple": [self(v, depth + 1) for v in x], "type": type(x).__name__}
        if isinstance(x, list):
            return {"$list": [self(v, depth + 1) for v in x]}
        if isinstance(x, dict):
            return {"$dict": [[self(k, depth + 1), self(v, depth + 1)] for k, v in list(x.items())[:10_000]]}
        if isinstance(x, nn.Module):
            return {"$module": type(x).__name__, "state": {k: v.detach() for k, v in x.state_dict().items()}}
        if isinstance(x, (torch.dtype, torch.device)):
            return {"$other": type(x).__name__, "repr": str(x)}
        number = _number(x)
        if number is not None:
            return number
        if dataclasses.is_dataclass(x) and not isinstance(x, type):
            attrs = {f.name: getattr(x, f.name) for f in dataclasses.fields(x)}
        elif hasattr(x, "__dict__") and not callable(x) and not isinstance(x, types.ModuleType):
            attrs = {k: v for k, v in list(vars(x).items())[:64] if not k.startswith("_")}
        else:
            return {"$other": type(x).__name__}
        return {"$object": type(x).__name__, "attrs": {str(k): self(v, depth + 1) for k, v in attrs.items()}}


def _number(x: Any) -> int | float | None:
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        return None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, (np.floating, np.bool_)):
        return float(x) if not isinstance(x, np.bool_) else bool(x)
    return None


# --- what a call changed in its arguments ---------------------------------------------------------


def _snapshot(x: Any, depth: int = 0) -> Any:
    if depth > 3:
        return None
    if isinstance(x, torch.Tensor):
        return ("tensor", x, x.detach().clone())
    if isinstance(x, nn.Module):
        params = [(name, p, p.detach().clone()) for name, p in x.named_parameters()]
        buffers = [(name, b, b.detach().clone()) for name, b in x.named_buffers()]
        return ("module", x, params, buffers)
    if isinstance(x, torch.optim.Optimizer):
        return ("optimizer", x)
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return ("object", x, {f.name: _snapshot(getattr(x, f.name), depth + 1) for f in dataclasses.fields(x)})
    if isinstance(x, (list, tuple)):
        return ("sequence", x, [_snapshot(v, depth + 1) for v in x])
    return None


def _changed(before: torch.Tensor, now: Any) -> bool:
    if not isinstance(now, torch.Tensor):
        return True
    return now.shape != before.shape or now.dtype != before.dtype or not torch.equal(now.detach(), before)


def _report(snap: Any) -> Any:
    """Plain data: the new values of what changed in place, and facts about parameters."""
    if snap is None:
        return None
    kind = snap[0]
    if kind == "tensor":
        _, tensor, before = snap
        return {"changed": tensor.detach()} if _changed(before, tensor) else {}
    if kind == "module":
        _, module, params, buffers = snap
        current = dict(module.named_parameters())
        out_params = []
        for name, original, before in params:
            now = current.get(name)
            entry = {"name": name, "replaced": now is not original, "missing": now is None}
            if now is not None:
                entry.update(requires_grad=bool(now.requires_grad), grad_fn=now.grad_fn is not None, is_leaf=bool(now.is_leaf),
                             grad=None if now.grad is None else now.grad.detach())
                if _changed(before, now):
                    entry["value"] = now.detach()
            out_params.append(entry)
        current_buffers = dict(module.named_buffers())
        out_buffers = [{"name": name, "value": current_buffers[name].detach()} for name, _, before in buffers
                       if name in current_buffers and _changed(before, current_buffers[name])]
        return {"params": out_params, "buffers": out_buffers}
    if kind == "optimizer":
        state = snap[1].state_dict()["state"]
        return {"state": {str(k): {sk: (sv.detach() if isinstance(sv, torch.Tensor) else sv) for sk, sv in v.items()
                                   if isinstance(sv, (torch.Tensor, int, float))}
                          for k, v in state.items()}}
    if kind == "object":
        _, obj, fields = snap
        out = {}
        for name, sub in fields.items():
            if sub is not None and sub[0] == "tensor" and getattr(obj, name, None) is not sub[1]:
                now = getattr(obj, name, None)  # the field was rebound to another object
                out[name] = {"changed": now.detach()} if isinstance(now, torch.Tensor) else {"rebound": type(now).__name__}
            else:
                reported = _report(sub)
                if reported:
                    out[name] = reported
        return {"fields": out}
    if kind == "sequence":
        return {"items": [_report(s) for s in snap[2]]}
    return None


# --- the process's life -----------------------------------------------------------------------------


class Worker:
    """Answers the grader's requests about the student's namespace."""

    GRAPHS_KEPT = 16

    def __init__(self, namespace: dict) -> None:
        self.namespace = namespace
        self.objects: dict[int, Any] = {}
        self.next_handle = 1
        self.graphs: OrderedDict[int, tuple[list[torch.Tensor], list[torch.Tensor]]] = OrderedDict()
        self.next_graph = 1
        self.capture = Capture()

    def handle(self, header: dict, objects: Any, generators: list[torch.Generator]) -> dict:
        op = header.get("op")
        if op in ("call", "new"):
            return self._call(header, objects, generators)
        if op == "forward":
            return self._forward(header, objects, generators)
        if op == "vjp":
            return self._vjp(header, objects)
        if op == "drop":
            for number in header.get("handles", []):
                self.objects.pop(number, None)
            return {"ok": True}
        return {"ok": False, "error": f"unknown request {op!r}"}

    def _object(self, number: int) -> Any:
        if number not in self.objects:
            raise KeyError(f"no object number {number}")
        return self.objects[number]

    def _target(self, header: dict) -> Callable:
        if "name" in header:
            return self.namespace[header["name"]]
        return getattr(self._object(header["handle"]), header["method"])

    def _call(self, header: dict, objects: Any, generators: list[torch.Generator]) -> dict:
        args, kwargs, rng = objects
        received = [(("args", i), a) for i, a in enumerate(args)] + [(("kwargs", k), v) for k, v in kwargs.items()]
        snaps = ([_snapshot(a) for a in args], {k: _snapshot(v) for k, v in kwargs.items()})
        leaves = [t for _, t in received if isinstance(t, torch.Tensor) and t.requires_grad and t.is_leaf]
        return self._run(lambda: self._target(header)(*args, **kwargs), header.get("op") == "new", received, snaps, leaves,
                         generators, rng)

    def _forward(self, header: dict, objects: Any, generators: list[torch.Generator]) -> dict:
        params, buffers, args, kwargs, rng = objects
        module = self._object(header["handle"])
        if header.get("path"):
            module = module.get_submodule(header["path"])
        module.train(bool(header.get("training", True)))
        leaves = [p for p in params.values() if p.requires_grad]
        leaves += [a for a in args if isinstance(a, torch.Tensor) and a.requires_grad and a.is_leaf]

        def run() -> Any:
            return torch.func.functional_call(module, {**params, **buffers}, tuple(args), kwargs)

        received = [(("args", i), a) for i, a in enumerate(args)]
        return self._run(run, False, received, ([None] * len(args), {}), leaves, generators, rng)

    def _run(self, run: Callable[[], Any], keep: bool, received, snaps, leaves, generators, rng) -> dict:
        torch.set_rng_state(rng)
        take_reached()
        started = self.capture.lines
        try:
            value = run()
            error = None
        except BaseException as err:  # noqa: BLE001 - whatever student code raises is reported, not fatal
            value, error = None, err
        reached = take_reached()
        answer: dict = {"ok": error is None, "reference": reached}
        if error is not None:
            answer["error"] = {"type": type(error).__name__, "builtin": type(error).__module__ == "builtins",
                               "message": describe_error(error)}
        elif keep:
            answer["result"] = self._new_handle(value)
        else:
            try:
                answer["result"] = _Plain(received)(value)
            except BaseException as err:  # noqa: BLE001
                answer["ok"] = False
                answer["error"] = {"type": "ValueError", "builtin": False,
                                   "message": f"the grader could not read what your code returned: {describe_error(err)}"}
            graph = self._keep_graph(value, leaves) if answer["ok"] else None
            if graph is not None:
                answer["graph"] = graph
        answer["args"] = [_report(s) for s in snaps[0]]
        answer["kwargs"] = {k: _report(s) for k, s in snaps[1].items()}
        answer["generators"] = [g.get_state() for g in generators]
        answer["rng"] = torch.get_rng_state()
        answer["printed"] = {"lines": self.capture.shown_since(started), "count": self.capture.lines - started}
        return answer

    def _keep_graph(self, value: Any, leaves: list[torch.Tensor]) -> int | None:
        outputs = [value] if isinstance(value, torch.Tensor) else list(value) if isinstance(value, (tuple, list)) else []
        if not leaves or not outputs or not all(isinstance(o, torch.Tensor) for o in outputs):
            return None
        if not any(o.grad_fn is not None for o in outputs):
            return None
        number = self.next_graph
        self.next_graph += 1
        self.graphs[number] = (outputs, leaves)
        while len(self.graphs) > self.GRAPHS_KEPT:
            self.graphs.popitem(last=False)
        return number

    def _vjp(self, header: dict, grad_outputs: list) -> dict:
        entry = self.graphs.pop(header["graph"], None)
        if entry is None:
            return {"ok": False, "error": {"type": "RuntimeError", "builtin": False,
                                           "message": "the grader asked for gradients of a call it no longer has"}}
        outputs, leaves = entry
        pairs = [(o, g) for o, g in zip(outputs, grad_outputs) if o.grad_fn is not None and g is not None]
        started = self.capture.lines
        try:
            grads = torch.autograd.grad([o for o, _ in pairs], leaves, [g for _, g in pairs], allow_unused=True)
            answer = {"ok": True, "result": [None if g is None else g.detach() for g in grads]}
        except BaseException as err:  # noqa: BLE001
            answer = {"ok": False, "error": {"type": type(err).__name__, "builtin": False, "message": describe_error(err)}}
        answer["reference"] = take_reached()
        answer["printed"] = {"lines": self.capture.shown_since(started), "count": self.capture.lines - started}
        return answer

    def _new_handle(self, value: Any) -> dict:
        number = self.next_handle
        self.next_handle += 1
        self.objects[number] = value
        answer: dict = {"$handle": number, "type": type(value).__name__}
        if isinstance(value, nn.Module):
            answer["module"] = {
                "modules": [[name, type(m).__name__] for name, m in value.named_modules()],
                "params": [[name, p.detach(), bool(p.requires_grad)] for name, p in value.named_parameters()],
                "buffers": [[name, b.detach()] for name, b in value.named_buffers()],
                "training": bool(value.training),
            }
        return answer


def describe_namespace(namespace: dict, required: tuple[str, ...]) -> dict:
    """What the grader needs to know before calling anything: which names are defined, which are
    classes, and which are (or plainly wrap) the library's reference implementation."""
    kinds, references = {}, {}
    for name in required:
        if name not in namespace:
            continue
        obj = namespace[name]
        kinds[name] = "class" if isinstance(obj, type) else "callable" if callable(obj) else type(obj).__name__
        found = reference_reached_by(obj)
        if found:
            references[name] = found
    return {"kinds": kinds, "references": references}


def serve(fd: int, setup: dict, namespace: dict | None) -> None:
    """The whole life of the student's process: load, then answer requests until told to stop.

    ``namespace`` is None when the graded cells in ``setup['cells']`` are to be run here.
    Never returns.
    """
    capture = Capture(keep=2_000)
    sys.stdout = sys.stderr = capture
    sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115 - lives as long as the process

    def no_input(prompt: str = "") -> str:
        raise EOFError("input() cannot be answered while grading: graded functions must not ask for input")

    builtins.input = no_input
    status = 0
    try:
        poison(setup.get("references", ()))
        if namespace is None:
            try:
                cells = [GradedCell(*cell) for cell in setup["cells"]]
                namespace = exec_cells(cells, setup.get("module", "graded"))
            except LoadError as err:
                wire.send_frame(fd, wire.encode_plain({"event": "load_failed", "message": str(err),
                                                       "printed": {"lines": capture.shown()[:5], "count": capture.lines}}))
                return
        worker = Worker(namespace)
        worker.capture = capture
        info = describe_namespace(namespace, tuple(setup.get("required", ())))
        wire.send_frame(fd, wire.encode_plain({"event": "loaded", **info,
                                               "printed": {"lines": capture.shown()[:5], "count": capture.lines}}))
        while True:
            frame = wire.recv_frame(fd)
            header, objects, generators = wire.decode_request(frame, worker._object)
            if header.get("op") == "quit":
                return
            answer = worker.handle(header, objects, generators)
            answer["id"] = header.get("id")
            try:
                data = wire.encode_plain(answer)
            except BaseException as err:  # noqa: BLE001
                data = wire.encode_plain({"id": header.get("id"), "ok": False,
                                          "error": {"type": "ValueError", "builtin": False,
                                                    "message": f"the grader could not read what your code returned: {err}"}})
            wire.send_frame(fd, data)
    except (wire.ChannelClosed, BrokenPipeError):
        status = 0
    except BaseException:  # noqa: BLE001 - the grader reports a process that stopped answering
        status = 71
    finally:
        os._exit(status)

