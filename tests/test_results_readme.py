"""results/README.md (generated whole) and the README's generated table must match the stored runs."""

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


def test_results_readme_and_the_readme_table_match_the_stored_runs(make_readme):
    assert make_readme.stale() == [], "run: python results/make_readme.py"
    assert make_readme.main(["--check"]) == 0


def test_every_field_is_used_and_every_used_field_is_known(make_readme):
    template = make_readme.TEMPLATE.read_text()
    used = {m["name"] for m in make_readme.FIELD.finditer(template)}
    used |= {m["name"] for path in make_readme.FILES for m in make_readme.BLOCK.finditer(path.read_text())}
    assert used == set(make_readme.FIELDS)


def test_the_lab_notebook_gives_a_regenerating_command_for_every_folder(make_readme):
    notebook = make_readme.NOTEBOOK.read_text()
    root = make_readme.RESULTS
    folders = {p.parent.relative_to(root.parent).as_posix() for p in root.rglob("*.json") if p.parent.name != "bench"}
    for folder in sorted(folders):
        if folder == "results/beyond/tail":  # diagnosis reports: made by the folder's own script
            assert "python results/beyond/tail/diagnose.py results/" in notebook
            continue
        assert f"--out {folder}" in notebook or f"--save {folder}/" in notebook, folder
    assert "results/bench/" in notebook


def test_a_stale_notebook_or_block_is_detected_and_rewritten(make_readme, tmp_path, monkeypatch):
    text = "before\n<!-- generated: missing -->\nsomething stale\n<!-- end generated -->\nafter\n"
    new = make_readme.regenerate(text)
    assert new.startswith("before\n<!-- generated: missing -->\n") and new.endswith("<!-- end generated -->\nafter\n")
    assert "something stale" not in new and "grid runs" in new
    stale_copy = tmp_path / "README.md"
    stale_copy.write_text(make_readme.NOTEBOOK.read_text().replace("grid runs", "grid  runs", 1))
    monkeypatch.setattr(make_readme, "NOTEBOOK", stale_copy)
    assert make_readme.stale()[0].endswith("README.md")
    size, missing = make_readme.grid_size(), make_readme.missing_runs(make_readme.RESULTS)
    absent = sum(len(seeds) for found in missing.values() for _, seeds in found)
    assert size >= 252 + 16 and absent < size
    block = make_readme.render_notebook("{{missing}}").removeprefix(make_readme.HEADER)
    assert (block == f"All {size} grid runs are stored." if not absent
            else block.startswith(f"{absent} of the {size} grid runs are not stored yet"))


def test_an_unknown_field_is_a_clear_error(make_readme):
    with pytest.raises(ValueError, match="unknown generated field 'nope'"):
        make_readme.regenerate("<!-- generated: nope -->\nx\n<!-- end generated -->\n")
    with pytest.raises(ValueError, match="unknown generated field 'nope'"):
        make_readme.render_notebook("{{nope}}")
