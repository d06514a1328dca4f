"""Build step for the wheel: the stored runs (results/) ship inside it as bitflip_lib/stored_results.

Chapters 7 and 7b read those runs; a student who installs the wheel has no results/ folder, so the
wheel carries a copy (the JSON runs, the benchmark notes and the lab notebook; not the scripts
that made them). Everything else about the package is in pyproject.toml.
"""
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

RESULTS = Path(__file__).resolve().parent / "results"
SHIPPED = {".json", ".txt", ".md"}


class BuildPyWithResults(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads results/ from the checkout itself
        if not (RESULTS / "default").is_dir():
            raise SystemExit("setup.py: results/ is missing: build from the course folder or its sdist")
        target = Path(self.build_lib, "bitflip_lib", "stored_results")
        for path in sorted(RESULTS.rglob("*")):
            if path.is_file() and path.suffix in SHIPPED and path.name != "README.template.md":
                out = target / path.relative_to(RESULTS)
                out.parent.mkdir(parents=True, exist_ok=True)
                self.copy_file(str(path), str(out))


setup(cmdclass={"build_py": BuildPyWithResults})
