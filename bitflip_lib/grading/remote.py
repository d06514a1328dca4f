"""The grader's side of a student's process: stand-ins that call the student's code over there.

A check runs in the grader with a :class:`StudentNamespace` in place of the student's names.
Calling ``ns["td_target"](reward, done, next_q, gamma)`` sends the arguments to the student's
process, which calls the student's function and answers with plain data; the stand-in then

* returns the value rebuilt from plain data (tensors, tuples, lists, dicts, and objects with
  tensor attributes; an object the call received comes back as the grader's own object);
* puts into the grader's arguments what the call changed in place (a tensor, a module's
  parameters and gradients, an optimiser's state, a generator's state) and into the grader's
  global random state what the call drew from it, so that the check sees exactly what it would
  see had it called the function itself;
* raises what the student's code raised (a ``ValueError`` stays a ``ValueError`` for the
  check's ``except``), :class:`ReferenceUsed` when it reached the library's own answer,
  :class:`StudentProcessEnded` when the process died, and ``CheckTimeout`` at the deadline.

Gradients cross too: a call whose tensor arguments require grad returns a result attached to
the grader's graph, whose backward pass asks the student's process for the vector-Jacobian
product (REINFORCE, trajectory balance). An instance of a student's ``nn.Module`` class is a
:class:`RemoteModule`: its parameters live in the grader (an optimiser here trains them) and
each forward pass runs the student's ``forward`` over there with them.
"""
from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bitflip_lib.grading import sandbox, wire
from bitflip_lib.grading.capture import Printed
from bitflip_lib.grading.timeout import CheckTimeout

SUPERVISOR_START_LIMIT = 300.0
"""Seconds a supervisor may take to import torch and the library (a loaded laptop is slow)."""


class StudentError(Exception):
    """The student's code raised; ``description`` is the one line the report shows."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


_MIRRORED = {cls.__name__: cls for cls in (
    ValueError, TypeError, RuntimeError, KeyError, IndexError, AttributeError, NotImplementedError, ZeroDivisionError,
    ArithmeticError, LookupError, OverflowError, StopIteration, EOFError, OSError, MemoryError, ImportError,
    ModuleNotFoundError, NameError, UnboundLocalError, RecursionError, FileNotFoundError, PermissionError)}
# Not AssertionError: the checks' own failures are AssertionErrors, and the student's must stay apart.
_ERROR_CLASSES: dict[str, type] = {}


def student_error(type_name: str, builtin: bool, description: str) -> StudentError:
    """An exception the check can catch as the built-in class the student's code raised
    (``except ValueError``), while the runner still reports it as the student's."""
    base = _MIRRORED.get(type_name) if builtin else None
    if base is None:
        return StudentError(description)
    cls = _ERROR_CLASSES.get(type_name)
    if cls is None:
        cls = _ERROR_CLASSES[type_name] = type(type_name, (StudentError, base), {})
    return cls(description)


class ReferenceUsed(BaseException):
    """The student's function reached the library's own implementation of the exercise (a
    BaseException, so that no ``except Exception`` in a check can hide it)."""

    def __init__(self, function: str, label: str) -> None:
        super().__init__(f"{function} uses {label}")
        self.function, self.label = function, label


class StudentProcessEnded(Exception):
    """The student's process ended while the grader waited for it; the message says how."""


class GraderProtocolError(Exception):
    """The student's process answered with something that is not an answer (malformed data,
    an answer to a question not asked): its code interfered with the grader."""


class RemoteObject:
    """An object the student's code returned, rebuilt from its public attributes."""

    def __init__(self, type_name: str, attrs: dict[str, Any] | None = None) -> None:
        self.__dict__.update(attrs or {})
        self.__dict__["_remote_type"] = type_name

    def __repr__(self) -> str:
        return f"<{self._remote_type} from your code>"


def kind(value: Any) -> str:
    """The type name of a value as the student's code made it."""
    if isinstance(value, RemoteObject):
        return value._remote_type
    if isinstance(value, (RemoteHandle, RemoteModule)):
        return value._remote_type
    return type(value).__name__


# --- facts about parameters after a call --------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ParameterFacts:
    """What the student's code left in one parameter of a module it received."""

    requires_grad: bool
    grad_fn: bool
    is_leaf: bool
    replaced: bool


_FACTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def parameter_facts(module: nn.Module, ids_before: dict[str, int] | None = None) -> dict[str, ParameterFacts]:
    """Per parameter name: whether it still requires grad, has a ``grad_fn``, is a leaf, and was
    replaced by another Parameter object, after the last call that received ``module``. For a
    call made in this process (no isolation), read from the module itself (``ids_before``: the
    parameters' ``id`` before the call)."""
    if module in _FACTS:
        return dict(_FACTS[module])
    return {name: ParameterFacts(bool(p.requires_grad), p.grad_fn is not None, bool(p.is_leaf),
                                 ids_before is not None and ids_before.get(name) != id(p))
            for name, p in module.named_parameters()}


# --- the student's process, seen from the grader ---------------------------------------------------


class StudentProcess:
    """One student's process: send requests, wait for the answers until the check's deadline."""

    def __init__(self, supervisor: Supervisor, number: int, fd: int, exercise: str) -> None:
        self.supervisor, self.number, self.fd, self.exercise = supervisor, number, fd, exercise
        self.deadline: float | None = None
        self.timeout_message = "timed out"
        self.printed = Printed()
        self.reference_function: str = "your code"
        self.usable_cuda = True
        self.ended = False
        self._next_id = 1

    def __deepcopy__(self, memo: dict) -> StudentProcess:
        return self  # a deep copy of a RemoteModule shares its process

    def __reduce__(self):  # noqa: ANN204
        raise TypeError("a student's process cannot be sent anywhere")

    def receive(self, deadline: float | None) -> Any:
        try:
            frame = wire.recv_frame(self.fd, deadline)
            return wire.decode_plain(frame, self._device_ok)
        except wire.ChannelTimeout:
            self.kill()
            raise CheckTimeout(self.timeout_message) from None
        except wire.ChannelClosed:
            raise StudentProcessEnded(self.supervisor.how_it_ended(self)) from None
        except wire.ProtocolError as err:
            self.kill()
            raise GraderProtocolError(f"the grading process sent malformed data ({err}): did your code write to the "
                                      "grader's channel?") from None

    def _device_ok(self, device: str) -> bool:
        return device.startswith("cuda") and self.usable_cuda and torch.cuda.is_available()

    def request(self, header: dict, objects: Any = None) -> tuple[dict, list[torch.Generator]]:
        if self.ended:
            raise StudentProcessEnded("the process running your code had already ended")
        number = self._next_id
        self._next_id += 1
        frame, generators = wire.encode_request({**header, "id": number}, objects)
        try:
            wire.send_frame(self.fd, frame, self.deadline)
        except wire.ChannelTimeout:
            self.kill()
            raise CheckTimeout(self.timeout_message) from None
        except wire.ChannelClosed:
            raise StudentProcessEnded(self.supervisor.how_it_ended(self)) from None
        answer = self.receive(self.deadline)
        if not isinstance(answer, dict) or answer.get("id") != number:
            self.kill()
            raise GraderProtocolError("the grading process answered a question it was not asked: did your code write to "
                                      "the grader's channel?")
        self.printed.add(*Printed.from_wire(answer.get("printed")))
        return answer, generators

    def kill(self) -> None:
        if not self.ended:
            self.ended = True
            self.supervisor.end(self)

    # -- calls -------------------------------------------------------------------------------------

    def call(self, target: dict, args: tuple, kwargs: dict, new: bool = False) -> Any:
        rng = torch.get_rng_state()
        answer, generators = self.request({"op": "new" if new else "call", **target}, (tuple(args), dict(kwargs), rng))
        name = target.get("name") or f"{target.get('type', 'object')}.{target.get('method')}"
        value = self._finish(answer, name, generators, args, kwargs)
        if new and not isinstance(value, (RemoteHandle, RemoteModule)):
            raise GraderProtocolError("the grading process did not name the object your class made")
        if answer.get("graph") is not None:
            inputs = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor) and a.requires_grad]
            value = _attach(self, int(answer["graph"]), value, inputs)
        return value

    def forward(self, number: int, path: str, module: nn.Module, args: tuple, kwargs: dict) -> Any:
        params = dict(module.named_parameters())
        buffers = dict(module.named_buffers())
        grad = torch.is_grad_enabled()
        sent = {k: (p if grad else p.detach()) for k, p in params.items()}
        rng = torch.get_rng_state()
        answer, generators = self.request({"op": "forward", "handle": number, "path": path, "training": module.training},
                                          (sent, buffers, tuple(args), dict(kwargs), rng))
        value = self._finish(answer, f"{module._remote_type}.forward", generators, args, kwargs)
        if answer.get("graph") is not None:
            inputs = [p for p in sent.values() if p.requires_grad]
            inputs += [a for a in args if isinstance(a, torch.Tensor) and a.requires_grad]
            value = _attach(self, int(answer["graph"]), value, inputs)
        return value

    def vjp(self, graph: int, grads: tuple) -> list:
        with torch.no_grad():
            answer, _ = self.request({"op": "vjp", "graph": graph}, list(grads))
        if answer.get("reference"):
            raise ReferenceUsed(self.reference_function, str(answer["reference"][0]))
        if not answer.get("ok"):
            raise _error_of(answer)
        result = answer.get("result")
        if not isinstance(result, list):
            raise GraderProtocolError("the gradients from the grading process are malformed")
        return result

    def _finish(self, answer: dict, name: str, generators: list, args: tuple, kwargs: dict) -> Any:
        _apply_state(answer, generators)
        if isinstance(answer.get("args"), list):
            for arg, report in zip(args, answer["args"]):
                apply_report(arg, report)
        if isinstance(answer.get("kwargs"), dict):
            for key, report in answer["kwargs"].items():
                if key in kwargs:
                    apply_report(kwargs[key], report)
        if answer.get("reference"):
            raise ReferenceUsed(self.reference_function, str(answer["reference"][0]))
        if not answer.get("ok"):
            raise _error_of(answer)
        try:
            return decode(answer.get("result"), args, kwargs, self)
        except (TypeError, ValueError, IndexError, KeyError, AttributeError) as err:
            raise GraderProtocolError(f"an answer of the grading process is malformed ({type(err).__name__})") from None

    def _handle(self, value: Any) -> Any:
        if not isinstance(value, dict) or "$handle" not in value:
            raise GraderProtocolError("the grading process did not name the object your class made")
        number, type_name = int(value["$handle"]), str(value.get("type", "object"))
        if isinstance(value.get("module"), dict):
            return _mirror(self, number, type_name, value["module"])
        return RemoteHandle(self, number, type_name)


def _error_of(answer: dict) -> BaseException:
    error = answer.get("error")
    if isinstance(error, dict):
        return student_error(str(error.get("type", "Exception")), error.get("builtin") is True, str(error.get("message", "")))
    return StudentError(str(error))


def _apply_state(answer: dict, generators: list[torch.Generator]) -> None:
    rng = answer.get("rng")
    if isinstance(rng, torch.Tensor) and rng.dtype == torch.uint8 and rng.shape == torch.get_rng_state().shape:
        try:
            torch.set_rng_state(rng)
        except RuntimeError:
            pass
    states = answer.get("generators")
    if isinstance(states, list):
        for generator, state in zip(generators, states):
            if isinstance(state, torch.Tensor) and state.dtype == torch.uint8 and state.shape == generator.get_state().shape:
                try:
                    generator.set_state(state)
                except RuntimeError as err:
                    raise GraderProtocolError(f"a generator's state came back malformed ({err})") from None


def apply_report(obj: Any, report: Any) -> None:
    """Put into the grader's ``obj`` what the student's call changed in its copy of it."""
    if not isinstance(report, dict) or not report:
        return
    with torch.no_grad():
        if isinstance(obj, torch.Tensor) and isinstance(report.get("changed"), torch.Tensor):
            new = report["changed"].to(obj.device)
            if new.shape == obj.shape and new.dtype == obj.dtype:
                obj.copy_(new)
            else:
                obj.set_(new.to(obj.dtype) if new.dtype.is_floating_point == obj.dtype.is_floating_point else new)
        elif isinstance(obj, nn.Module) and isinstance(report.get("params"), list):
            params = dict(obj.named_parameters())
            facts = {}
            for entry in report["params"]:
                if not isinstance(entry, dict) or entry.get("name") not in params:
                    continue
                p = params[entry["name"]]
                value = entry.get("value")
                if isinstance(value, torch.Tensor) and value.shape == p.shape:
                    p.copy_(value.to(p.device, p.dtype))
                grad = entry.get("grad")
                p.grad = grad.to(p.device, p.dtype).clone() if isinstance(grad, torch.Tensor) and grad.shape == p.shape else None
                facts[entry["name"]] = ParameterFacts(entry.get("requires_grad") is True, entry.get("grad_fn") is True,
                                                      entry.get("is_leaf") is not False,
                                                      entry.get("replaced") is True or entry.get("missing") is True)
            _FACTS[obj] = facts
            buffers = dict(obj.named_buffers())
            for entry in report.get("buffers", []):
                if isinstance(entry, dict) and entry.get("name") in buffers and isinstance(entry.get("value"), torch.Tensor):
                    b = buffers[entry["name"]]
                    if entry["value"].shape == b.shape:
                        b.copy_(entry["value"].to(b.device, b.dtype))
        elif isinstance(obj, torch.optim.Optimizer) and isinstance(report.get("state"), dict):
            _load_optimizer_state(obj, report["state"])
        elif dataclasses.is_dataclass(obj) and isinstance(report.get("fields"), dict):
            for name, sub in report["fields"].items():
                if hasattr(obj, name):
                    apply_report(getattr(obj, name), sub)
        elif isinstance(obj, (list, tuple)) and isinstance(report.get("items"), list):
            for item, sub in zip(obj, report["items"]):
                apply_report(item, sub)


def _load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict) -> None:
    """The optimiser's per-parameter state (moments, step counts) from the student's copy; its
    hyperparameters (learning rate, betas) stay the grader's."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    new_state = {}
    for key, entry in state.items():
        try:
            index = int(key)
        except ValueError:
            continue
        if not (0 <= index < len(params)) or not isinstance(entry, dict):
            continue
        p = params[index]
        values = {}
        for name, value in entry.items():
            if isinstance(value, torch.Tensor):
                if value.dim() > 0 and value.shape != p.shape:
                    raise GraderProtocolError(f"the optimiser's state '{name}' came back with shape {tuple(value.shape)} "
                                              f"for a parameter of shape {tuple(p.shape)}")
                values[name] = value.to(p.device) if value.dim() > 0 else value
            elif isinstance(value, (int, float)):
                values[name] = value
        new_state[p] = values
    optimizer.state.clear()
    optimizer.state.update(new_state)


def decode(x: Any, args: tuple, kwargs: dict, link: StudentProcess | None = None) -> Any:
    """The grader's value for plain data from the student's process."""
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    if isinstance(x, list):
        return [decode(v, args, kwargs, link) for v in x]
    if not isinstance(x, dict):
        raise GraderProtocolError(f"unexpected {type(x).__name__} in an answer")
    if "$tensor" in x:
        tensor = x["$tensor"]
        if not isinstance(tensor, torch.Tensor):
            raise GraderProtocolError("a tensor in an answer is malformed")
        if (tensor.dtype.is_floating_point or tensor.dtype.is_complex) and x.get("grad_fn") is True:
            tensor = tensor.requires_grad_(True) * 1  # it held an autograd graph over there: so it does here
        elif (tensor.dtype.is_floating_point or tensor.dtype.is_complex) and x.get("requires_grad") is True:
            tensor.requires_grad_(True)
        return tensor
    if "$tuple" in x:
        return tuple(decode(v, args, kwargs, link) for v in x["$tuple"])
    if "$list" in x:
        return [decode(v, args, kwargs, link) for v in x["$list"]]
    if "$dict" in x:
        out = {}
        for pair in x["$dict"]:
            key = decode(pair[0], args, kwargs, link)
            try:
                out[key] = decode(pair[1], args, kwargs, link)
            except TypeError:
                out[repr(key)] = decode(pair[1], args, kwargs, link)
        return out
    if "$arg" in x:
        where, key = x["$arg"]
        if where == "args" and isinstance(key, int) and 0 <= key < len(args):
            return args[key]
        if where == "kwargs" and key in kwargs:
            return kwargs[key]
        raise GraderProtocolError("an answer names an argument that was not sent")
    if "$object" in x:
        type_name = str(x["$object"])
        attrs = {str(k): decode(v, args, kwargs, link) for k, v in dict(x.get("attrs", {})).items()}
        return _transitions(type_name, attrs) or RemoteObject(type_name, attrs)
    if "$module" in x:
        return RemoteObject(f"{x['$module']} (a module)", {"state": decode({"$dict": [[k, v] for k, v in
                                                                                        dict(x.get("state", {})).items()]},
                                                                           args, kwargs, link)})
    if "$handle" in x:
        if link is None:
            raise GraderProtocolError("an answer names an object of the student's process")
        return link._handle(x)
    if "$other" in x:
        return RemoteObject(str(x["$other"]), {"repr": x.get("repr")} if "repr" in x else {})
    raise GraderProtocolError("an answer holds an unknown kind of value")


def _transitions(type_name: str, attrs: dict) -> Any:
    """A real :class:`~bitflip_lib.replay.Transitions` when the student's code returned one."""
    from bitflip_lib.replay import Transitions

    names = [f.name for f in dataclasses.fields(Transitions)]
    if type_name == "Transitions" and sorted(attrs) == sorted(names) and all(isinstance(attrs[n], torch.Tensor) for n in names):
        return Transitions(**{n: attrs[n] for n in names})
    return None


# --- gradients across the two processes -------------------------------------------------------------


class _Attach(torch.autograd.Function):
    """Outputs computed in the student's process, joined to the grader's graph: the backward pass
    asks that process for the gradients with respect to the inputs that required them."""

    @staticmethod
    def forward(ctx, link, graph, outputs, *inputs):  # noqa: ANN001, ANN205
        ctx.link, ctx.graph, ctx.count = link, graph, len(outputs)
        ctx.input_specs = [(i.shape, i.dtype, i.device) for i in inputs]
        return tuple(o.detach().clone() for o in outputs)

    @staticmethod
    def backward(ctx, *grads):  # noqa: ANN001, ANN205
        got = ctx.link.vjp(ctx.graph, grads)
        specs = ctx.input_specs
        if len(got) != len(specs):
            raise GraderProtocolError("the grading process sent gradients for other inputs than those sent")
        out = []
        for grad, (shape, dtype, device) in zip(got, specs):
            if isinstance(grad, torch.Tensor):
                if grad.shape != shape:
                    raise GraderProtocolError("a gradient from the grading process has the wrong shape")
                out.append(grad.to(device, dtype))
            else:
                out.append(None)
        return (None, None, None, *out)


def _attach(link: StudentProcess, graph: int, value: Any, inputs: list[torch.Tensor]) -> Any:
    single = isinstance(value, torch.Tensor)
    outputs = [value] if single else list(value) if isinstance(value, (tuple, list)) else None
    if not outputs or not all(isinstance(o, torch.Tensor) for o in outputs) or not inputs:
        return value
    outputs = [o.detach() for o in outputs]
    joined = _Attach.apply(link, graph, outputs, *inputs)
    return joined[0] if single else type(value)(joined) if isinstance(value, tuple) else list(joined)


# --- stand-ins ---------------------------------------------------------------------------------------


class RemoteFunction:
    """A student's function (or any callable name)."""

    def __init__(self, link: StudentProcess, name: str) -> None:
        self._link, self.__name__ = link, name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self._link.reference_function = self.__name__
        return self._link.call({"name": self.__name__}, args, kwargs)

    def __repr__(self) -> str:
        return f"<your {self.__name__}>"


class RemoteClass(RemoteFunction):
    """A student's class: calling it makes an instance over there."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self._link.reference_function = self.__name__
        return self._link.call({"name": self.__name__}, args, kwargs, new=True)


class RemoteMethod:
    def __init__(self, link: StudentProcess, number: int, name: str, type_name: str = "object") -> None:
        self._link, self._number, self.__name__, self._type = link, number, name, type_name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._link.call({"handle": self._number, "method": self.__name__, "type": self._type}, args, kwargs)


class RemoteHandle(wire.Handle):
    """An instance of a student's class (not a module), living in the student's process."""

    def __init__(self, link: StudentProcess, number: int, type_name: str) -> None:
        super().__init__(number)
        self._link, self._remote_type = link, type_name

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return RemoteMethod(self._link, self.handle_number, name, self._remote_type)

    def __len__(self) -> int:
        value = RemoteMethod(self._link, self.handle_number, "__len__", self._remote_type)()
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise StudentError(f"len() of your {self._remote_type} returned {value!r}: __len__ must return an integer >= 0")
        return value

    def __repr__(self) -> str:
        return f"<your {self._remote_type}>"


class RemoteModule(nn.Module):
    """An instance of a student's ``nn.Module``: parameters here, ``forward`` over there."""

    def __init__(self, link: StudentProcess, number: int, path: str, type_name: str) -> None:
        super().__init__()
        self.__dict__["_remote"] = (link, number, path)
        self.__dict__["_remote_type"] = type_name

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        link, number, path = self._remote
        return link.forward(number, path, self, args, kwargs)

    def extra_repr(self) -> str:
        return f"your {self._remote_type}"

    _grader_only = True  # wire refuses to send it: its parameters are the grader's, its code the student's


def _mirror(link: StudentProcess, number: int, type_name: str, info: dict) -> RemoteModule:
    root = RemoteModule(link, number, "", type_name)
    modules = {"": root}
    try:
        for path, sub_type in info.get("modules", [])[1:]:
            parent, _, name = str(path).rpartition(".")
            if parent not in modules:
                continue
            child = RemoteModule(link, number, str(path), str(sub_type))
            modules[parent].add_module(name, child)
            modules[str(path)] = child
        for name, tensor, requires_grad in info.get("params", []):
            owner, _, attr = str(name).rpartition(".")
            if owner in modules and isinstance(tensor, torch.Tensor) and tensor.dtype.is_floating_point:
                modules[owner].register_parameter(attr, nn.Parameter(tensor.detach().clone(), requires_grad=requires_grad is True))
        for name, tensor in info.get("buffers", []):
            owner, _, attr = str(name).rpartition(".")
            if owner in modules and isinstance(tensor, torch.Tensor):
                modules[owner].register_buffer(attr, tensor.clone())
    except (KeyError, TypeError, ValueError) as err:
        raise GraderProtocolError(f"the description of your module is malformed ({err})") from None
    root.train(info.get("training") is not False)
    return root


class StudentNamespace(Mapping):
    """The names a check may call: the exercise's required names, standing in for the student's."""

    def __init__(self, link: StudentProcess, kinds: dict[str, str]) -> None:
        self._link = link
        self._items = {name: (RemoteClass if kind_ == "class" else RemoteFunction)(link, name) for name, kind_ in kinds.items()}

    def __getitem__(self, name: str) -> Any:
        return self._items[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


# --- supervisors -------------------------------------------------------------------------------------


class Supervisor:
    """The grader's handle on a supervisor process (see :mod:`bitflip_lib.grading.sandbox`)."""

    def __init__(self, control: socket.socket, pid: int, process: subprocess.Popen | None, usable_cuda: bool) -> None:
        self.control = sandbox.Control(control)
        self.pid, self.process, self.usable_cuda = pid, process, usable_cuda
        self.ready = False
        self.landlock = 0
        self._lock = threading.Lock()
        self._numbers = 0
        self.broken = False

    def wait_ready(self, limit: float = SUPERVISOR_START_LIMIT) -> None:
        if self.ready:
            return
        try:
            message, _ = self.control.recv(timeout=limit)
        except TimeoutError:
            message = None
        if not message or message.get("event") != "ready":
            self.broken = True
            raise RuntimeError("the grader's supervisor process did not start (see `python -m bitflip_lib.grading "
                               "grade --help`, or set BITFLIP_GRADER_ISOLATION=off to grade without isolation)")
        self.ready, self.landlock = True, int(message.get("landlock", 0))

    def _ask(self, message: dict, fds: list[int] = (), timeout: float = 60.0) -> dict:
        with self._lock:
            try:
                self.control.send(message, fds)
                answer, _ = self.control.recv(timeout=timeout)
            except (OSError, TimeoutError):
                answer = None
        if answer is None:
            self.broken = True
            raise StudentProcessEnded("the grader's supervisor process ended (did your code kill it?)")
        return answer

    def spawn(self, setup: dict, exercise: str) -> StudentProcess:
        self.wait_ready()
        grader_end, student_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._numbers += 1
        number = self._numbers
        try:
            self._ask({"op": "spawn", "number": number, "setup": setup}, [student_end.fileno()])
        finally:
            student_end.close()
        fd = grader_end.detach()
        os.set_blocking(fd, False)
        link = StudentProcess(self, number, fd, exercise)
        link.usable_cuda = self.usable_cuda
        return link

    def sweep(self) -> int:
        return int(self._ask({"op": "sweep"}).get("killed", 0))

    def how_it_ended(self, link: StudentProcess) -> str:
        if link.ended:
            return "the process running your code had already ended"
        try:
            answer = self._ask({"op": "status", "number": link.number, "wait": 2.0})
        except StudentProcessEnded as err:
            return str(err)
        status = answer.get("status")
        self.end(link)
        return sandbox.describe_status(status if isinstance(status, int) else None)

    def end(self, link: StudentProcess) -> None:
        link.ended = True
        try:
            self._ask({"op": "end", "number": link.number})
        except StudentProcessEnded:
            pass
        finally:
            try:
                os.close(link.fd)
            except OSError:
                pass
            link.fd = -1

    def close(self) -> None:
        try:
            with self._lock:
                self.control.send({"op": "quit"})
        except OSError:
            pass
        self.control.sock.close()
        if self.process is not None:
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        else:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    pid, _ = os.waitpid(self.pid, os.WNOHANG)
                except ChildProcessError:
                    return
                if pid:
                    return
                time.sleep(0.01)
            try:
                os.kill(self.pid, 9)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass

    @property
    def alive(self) -> bool:
        if self.broken:
            return False
        if self.process is not None:
            return self.process.poll() is None
        try:
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            return False
        return pid == 0


def start_file_supervisor() -> Supervisor:
    """A supervisor for graded files: a fresh interpreter with a clean environment (nothing of the
    grader's memory or environment, so nothing of it can leak into a student's report)."""
    grader_end, supervisor_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    process = subprocess.Popen(
        [sys.executable, "-I", "-c", sandbox.BOOT, str(sandbox.library_root()), str(supervisor_end.fileno())],
        pass_fds=[supervisor_end.fileno()], env=sandbox.clean_environment(), cwd=tempfile.gettempdir(),
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    supervisor_end.close()
    return Supervisor(grader_end, process.pid, process, usable_cuda=True)


_plan: dict | None = None


def start_memory_supervisor(namespace: dict) -> Supervisor:
    """A supervisor forked from this process, for names defined here (a notebook's functions):
    the student's processes inherit ``namespace``."""
    from bitflip_lib.grading.worker import serve

    global _plan
    if _plan is None:
        _plan = sandbox.prepare()  # imports the library here once
    plan = _plan
    cuda_used = _cuda_initialized()
    grader_end, supervisor_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()  # nothing buffered here may be written twice
        except Exception:  # noqa: BLE001, S110
            pass
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "multi-threaded process ... fork()" in a kernel
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the supervisor
        try:
            grader_end.close()
            keep = supervisor_end.fileno()
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.closerange(3, keep)
            os.closerange(keep + 1, 1 << 16)
            os.setsid()
            sandbox.supervise(supervisor_end, plan, lambda channel, setup: serve(channel, setup, namespace))
        finally:
            os._exit(0)
    supervisor_end.close()
    return Supervisor(grader_end, pid, None, usable_cuda=not cuda_used)


def _cuda_initialized() -> bool:
    try:
        return bool(torch.cuda.is_initialized())
    except Exception:  # noqa: BLE001
        return False


def new_scratch(notebook: Path | None = None, data: bytes | None = None) -> str:
    """A fresh scratch folder (private to this user) holding a copy of the notebook graded."""
    scratch = tempfile.mkdtemp(prefix="bitflip-grade-")
    if notebook is not None and data is not None:
        Path(scratch, notebook.name).write_bytes(data)
    return scratch
