"""The course's version, written here and nowhere else (pyproject.toml reads it; the package
re-exports it as ``bitflip_lib.__version__``). A module of its own, so that the modules that
record it (the trainer, the release) need not import the package they belong to."""

__version__ = "0.1.0"
