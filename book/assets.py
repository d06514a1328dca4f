"""The site's browser-side libraries, from the npm registry, pinned and checked; nothing from a CDN.

MathJax typesets the formulas, require.js and the ipywidgets HTML manager show the widgets'
last state. ``npm pack`` fetches each package's tarball (no install scripts run, no dependencies
are pulled: the files used here are self-contained bundles); the tarball's sha512 must match the
one pinned below, and only the files the site loads are unpacked into the build's static folder.

    python book/assets.py DEST      # unpack into DEST/ (the tarballs are cached in .venv/book-cache)
"""
from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".venv" / "book-cache" / "npm"


@dataclass(frozen=True)
class NpmAsset:
    name: str
    version: str
    integrity: str  # the registry's sha512 of the tarball (npm view NAME@VERSION dist.integrity)
    files: tuple[tuple[str, str], ...]  # (path inside the package, a prefix or a file; destination under DEST)

    @property
    def tarball(self) -> str:
        return f"{self.name.lstrip('@').replace('/', '-')}-{self.version}.tgz"


ASSETS = (
    # MathJax 3 (the last release of the version Sphinx's MathJax configuration targets).
    NpmAsset("mathjax", "3.2.2",
             "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw==",
             (("es5/tex-chtml.js", "mathjax/tex-chtml.js"), ("es5/input/", "mathjax/input/"),
              ("es5/output/chtml", "mathjax/output/chtml"), ("es5/ui/", "mathjax/ui/"),
              ("es5/a11y/", "mathjax/a11y/"), ("es5/adaptors/", "mathjax/adaptors/"), ("es5/sre/", "mathjax/sre/"))),
    NpmAsset("requirejs", "2.3.8",
             "sha512-7/cTSLOdYkNBNJcDMWf+luFvMriVm7eYxp4BcFCsAX0wF421Vyce5SXP17c+Jd5otXKGNehIonFlyQXSowL6Mw==",
             (("require.js", "widgets/require.js"),)),
    # The ipywidgets 8 embedder (html-manager 1.x pairs with ipywidgets 8): base and controls widgets
    # are bundled in embed-amd.js. Its icon fonts are fetched relative to its modules' require.js
    # URLs (baseUrl + "@jupyter-widgets/"), so they go there (book/_static/require-config.js).
    NpmAsset("@jupyter-widgets/html-manager", "1.0.15",
             "sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA==",
             (("dist/embed-amd.js", "widgets/embed-amd.js"),
              *((f"dist/*.{ext}", "widgets/@jupyter-widgets/") for ext in ("woff2", "woff", "ttf", "eot", "svg")))),
)


def sha512_integrity(path: Path) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


def fetch(asset: NpmAsset, cache: Path = CACHE) -> Path:
    """The package's tarball, from the cache or ``npm pack``; refused unless its sha512 is the pinned one."""
    tarball = cache / asset.tarball
    if not tarball.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise SystemExit("book: npm (Node.js) is needed to fetch MathJax and the widget embedder: "
                             "install Node.js (Debian: apt-get install npm)")
        cache.mkdir(parents=True, exist_ok=True)
        spec = f"{asset.name}@{asset.version}"
        done = subprocess.run([npm, "pack", spec, "--pack-destination", str(cache), "--silent"],
                              capture_output=True, text=True)
        if done.returncode != 0 or not tarball.exists():
            raise SystemExit(f"book: `npm pack {spec}` failed: {done.stderr.strip()[-400:]}")
    found = sha512_integrity(tarball)
    if found != asset.integrity:
        tarball.unlink()
        raise SystemExit(f"book: {asset.tarball} has sha512 {found}, not the pinned {asset.integrity}: refused")
    return tarball


def _matches(member: str, pattern: str) -> bool:
    if "*" in pattern:
        folder, _, suffix = pattern.rpartition("*")
        return member.startswith(folder) and member.endswith(suffix) and "/" not in member[len(folder):]
    return member == pattern or (pattern.endswith("/") and member.startswith(pattern)) or member.startswith(pattern + "/")


def unpack(dest: Path, cache: Path = CACHE) -> list[Path]:
    """Every pinned asset's files under ``dest``; returns the files written."""
    written = []
    for asset in ASSETS:
        with tarfile.open(fetch(asset, cache)) as archive:
            for member in archive.getmembers():
                if not member.isfile() or not member.name.startswith("package/"):
                    continue
                inner = member.name[len("package/"):]
                for pattern, target in asset.files:
                    if not _matches(inner, pattern):
                        continue
                    if target.endswith("/"):
                        relative = inner[len(pattern):] if pattern.endswith("/") else Path(inner).name
                        out = dest / target / relative
                    elif inner == pattern:
                        out = dest / target
                    else:  # a folder copied under a new name
                        out = dest / target / inner[len(pattern):].lstrip("/")
                    out.parent.mkdir(parents=True, exist_ok=True)
                    source = archive.extractfile(member)
                    assert source is not None
                    out.write_bytes(source.read())
                    written.append(out)
                    break
    return written


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python book/assets.py DEST")
    files = unpack(Path(sys.argv[1]))
    print(f"{len(files)} files from {len(ASSETS)} npm packages in {sys.argv[1]}")
