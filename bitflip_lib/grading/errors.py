"""One readable line for an exception raised by student code, with the student's own line."""
from __future__ import annotations

import traceback

STUDENT_FILES: set[str] = set()
"""File names under which the student's graded cells were compiled (see ``notebook.exec_cells``):
a traceback frame from one of them is the student's own line."""

# torch's messages for the classic autograd mistakes are paragraphs; the first words identify
# them, and one sentence says what to do.
_KNOWN = (
    ("one of the variables needed for gradient computation has been modified by an inplace operation",
     "backward() needs a tensor that was changed in place after the loss was computed (torch: 'modified by an "
     "inplace operation'): change parameters in place only after backward() and the optimiser step, and compute "
     "targets under torch.no_grad()"),
    ("a leaf Variable that requires grad is being used in an in-place operation",
     "a parameter was changed in place while autograd was recording (torch: 'a leaf Variable that requires grad is "
     "being used in an in-place operation'): do in-place updates of parameters under torch.no_grad()"),
    ("element 0 of tensors does not require grad and does not have a grad_fn",
     "backward() on a value without an autograd graph (torch: 'element 0 of tensors does not require grad'): was it "
     "computed under torch.no_grad(), or detached, before the loss?"),
    ("Trying to backward through the graph a second time",
     "backward() ran twice through the same graph (torch: 'Trying to backward through the graph a second time')"),
)


def _student_frame(filename: str) -> str | None:
    """How to name a traceback frame's file if it is the student's code, else None."""
    if filename in STUDENT_FILES:
        return filename
    if "ipykernel" in filename or filename.startswith("<ipython"):
        return "your notebook cell"
    return None


def where(err: BaseException) -> str:
    """`` at <file>, line <n>: <code>`` for the student's innermost line in the traceback, or ''."""
    for frame in reversed(traceback.extract_tb(err.__traceback__)):
        name = _student_frame(frame.filename)
        if name is not None:
            code = (frame.line or "").strip()
            return f" at {name}, line {frame.lineno}" + (f": {code}" if code else "")
    return ""


def first_line(text: str) -> str:
    """The first line of an error message, with a known torch paragraph said in one sentence."""
    for prefix, plain in _KNOWN:
        if prefix in text:
            return plain
    line = text.strip().split("\n", 1)[0].strip()
    return line


def describe_error(err: BaseException) -> str:
    """A one-line account of an exception raised by student code, with the line it came from."""
    from bitflip_lib.grading.timeout import CheckTimeout

    if isinstance(err, NotImplementedError):
        hint = first_line(str(err)) or "this part"
        return f"not written yet (NotImplementedError: {hint})"
    if isinstance(err, CheckTimeout):
        return f"timed out: {err}"
    if isinstance(err, SystemExit):
        call = "sys.exit()" if err.code is None else f"sys.exit({err.code!r})"
        return f"your code called {call}{where(err)}: a graded function must return its result, not end the program"
    if isinstance(err, KeyboardInterrupt):
        return f"your code raised KeyboardInterrupt{where(err)}"
    kind = type(err).__name__
    if isinstance(err, MemoryError) or (isinstance(err, RuntimeError) and "can't allocate memory" in str(err)):
        return f"your code ran out of memory{where(err)} (the grader limits the memory a check may use)"
    if not isinstance(err, Exception):
        kind += " (a BaseException that is not an Exception)"
    text = first_line(str(err))
    return f"your code raised {kind}" + (f": {text}" if text else "") + where(err)
