"""Keeping what student code prints: the first lines, and how many there were."""
from __future__ import annotations

import io

from bitflip_lib.grading.model import MAX_SHOWN_LINE, SHOWN_LINES


class _Sink(io.RawIOBase):
    """Keeps the first bytes written and counts the lines; a buffer in front of it calls
    :meth:`write` once per 64 KiB, so a student loop printing 800,000 lines stays cheap."""

    def __init__(self, keep_bytes: int) -> None:
        super().__init__()
        self.head = bytearray()
        self.newlines = 0
        self.open_line = False  # text after the last newline
        self._keep = keep_bytes

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        data = bytes(data)
        if len(self.head) < self._keep:
            self.head += data[: self._keep - len(self.head)]
        if data:
            self.newlines += data.count(b"\n")
            self.open_line = not data.endswith(b"\n")
        return len(data)


class Capture(io.TextIOWrapper):
    """A text stream that keeps the first ``keep`` lines printed to it and counts them all."""

    def __init__(self, keep: int = SHOWN_LINES) -> None:
        self._sink = _Sink(keep * (MAX_SHOWN_LINE + 1) * 4)
        self._keep_lines = keep
        super().__init__(io.BufferedWriter(self._sink, 1 << 16), encoding="utf-8", errors="replace", newline="\n")

    @property
    def lines(self) -> int:
        self.flush()
        return self._sink.newlines + (1 if self._sink.open_line else 0)

    def shown(self) -> list[str]:
        self.flush()
        text = self._sink.head.decode("utf-8", errors="replace")
        return [line[:MAX_SHOWN_LINE] for line in text.split("\n")[: min(self._keep_lines, self.lines)]]

    def shown_since(self, start: int, count: int = SHOWN_LINES) -> list[str]:
        """Up to ``count`` lines printed after the first ``start`` (while they are among those kept)."""
        return self.shown()[start:start + count]


class Printed:
    """What one check printed, gathered over several calls into the student's process."""

    def __init__(self) -> None:
        self.shown: list[str] = []
        self.count = 0

    def add(self, shown: list[str], count: int) -> None:
        self.shown.extend(shown[: max(0, SHOWN_LINES - len(self.shown))])
        self.count += count

    @staticmethod
    def from_wire(printed: object) -> tuple[list[str], int]:
        """``(lines, count)`` from what the student's process reported printing; anything
        malformed (its code can write to the channel) counts as nothing printed."""
        if not isinstance(printed, dict):
            return [], 0
        lines = printed.get("lines")
        count = printed.get("count")
        return ([str(line) for line in lines][:SHOWN_LINES] if isinstance(lines, list) else [],
                max(0, count) if isinstance(count, int) and not isinstance(count, bool) else 0)
