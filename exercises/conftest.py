"""The notebooks in exercises/ raise NotImplementedError by design until a student fills them in.

Keep pytest (and `pytest --nbval-lax exercises/`) from collecting them: students grade their work
with `bitflip grade`, and CI checks the stubs through tests/test_graders.py instead.
"""
collect_ignore_glob = ["*.ipynb", "ex*.py"]
