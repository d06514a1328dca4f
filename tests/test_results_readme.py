"""The tables in README.md and results/README.md must match the stored runs."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "results" / "make_readme.py"


@pytest.fixture(scope="module")
def make_readme():
    spec = importlib.util.spec_from_file_location("make_readme", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_generated_block_matches_the_stored_runs(make_readme):
    assert make_readme.stale_blocks() == [], "run: python results/make_readme.py"


def test_both_readmes_have_their_blocks(make_readme):
    names = {m["name"] for path in make_readme.FILES for m in make_readme.BLOCK.finditer(path.read_text())}
    assert names == set(make_readme.GENERATORS)


def test_a_changed_table_is_detected_and_rewritten(make_readme):
    text = "before\n<!-- generated: missing -->\nsomething stale\n<!-- end generated -->\nafter\n"
    new = make_readme.regenerate(text)
    assert new.startswith("before\n<!-- generated: missing -->\n") and new.endswith("<!-- end generated -->\nafter\n")
    assert "something stale" not in new and "grid runs" in new


def test_an_unknown_block_name_is_a_clear_error(make_readme):
    with pytest.raises(ValueError, match="unknown generated block 'nope'"):
        make_readme.regenerate("<!-- generated: nope -->\nx\n<!-- end generated -->\n")
