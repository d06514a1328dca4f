"""Is a package index reachable? One quick HTTP HEAD, for ``./course`` before it installs PyTorch.

Run as a script (``python tools/setup_probe.py URL [TIMEOUT]``) before the course library is
installed, so it uses the standard library only. Exit status 0: the server answered (any status
below 500); 1: it did not, within the timeout (default 3 s). pip would otherwise retry an
unreachable index five times per package, about 75 s of warnings for a set-up that then uses PyPI.
"""
from __future__ import annotations

import sys
import urllib.error
import urllib.request


def reachable(url: str, timeout: float = 3.0) -> bool:
    """True when ``url`` answers a HEAD request with a status below 500 within ``timeout`` seconds."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return True
    except urllib.error.HTTPError as err:  # the server answered: pip will get an answer too
        return err.code < 500
    except (OSError, ValueError):  # refused, timed out, no route, no DNS, bad URL
        return False


def main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 2:
        print("usage: python tools/setup_probe.py URL [TIMEOUT_SECONDS]", file=sys.stderr)
        return 2
    return 0 if reachable(argv[0], float(argv[1]) if len(argv) > 1 else 3.0) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
