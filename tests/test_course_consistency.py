"""One story across the student texts: chapters, glossary and exercises agree with each other.

Student text here is the chapters (`chapters/NN_*.py`), the glossary (`chapters/glossary.md`), the
exercise notebooks (`exercises/*.py`, `solutions/*.py`) and `exercises/README.md`. The checks:

* **Definitions are in the glossary.** The convention the chapters follow (stated at the top of
  the glossary): a term set in bold *inside a sentence* is being defined, and must be a glossary
  entry. Bold is a run-in heading, not a definition, when it opens a paragraph or a list item
  (after `* `, `- `, `1. ` or `> `), or when its text ends with `.`, `:`, `?` or `!`. Emphasis is
  set in italics. A bold term matches an entry when, lower-cased and with a plural `s` dropped, it
  equals one of the entry's names: the heading split at commas, with the text in parentheses as
  further names and a standalone `$...$` symbol dropped.
* **Glossary references are true.** Every entry ends with `(ch. N, M)`; every chapter named there
  exists and uses one of the entry's names in its prose.
* **Every chapter links the glossary.**
* **Cross-references resolve.** "chapter N" / "ch. N" / "chapters N-M" name existing chapters;
  "section N" names a numbered section (`## N. Title`) of the chapter named just before it
  ("chapter 7b, section 4") or after it ("section 2 of chapter 8"), else of the chapter the text is
  in (outside a chapter a section must name its chapter). Dotted numbers ("section 3.6") cite
  other works and are skipped, as is each References section. "exercise N" and `exNN` name
  existing exercises.
* **Nothing a student does not have.** No seed-file names ("seed 003"), no files or labels of the
  course's own tooling (COURSE.md, CALIBRATION, CI, issue numbers, paths on the authors' machines),
  no "our runs" or "this machine"; every repository path in backticks or in a relative link
  exists, and every `bitflip_lib.x.y` name imports.
"""
from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTER_FILES = sorted((ROOT / "chapters").glob("[0-9]*.py"))
GLOSSARY = ROOT / "chapters" / "glossary.md"
EXERCISE_FILES = [*sorted((ROOT / "exercises").glob("ex*.py")),
                  *sorted((ROOT / "solutions").glob("ex*.py"))]
STUDENT_FILES = [*CHAPTER_FILES, GLOSSARY, *EXERCISE_FILES, ROOT / "exercises" / "README.md"]


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def chapter_id(path: Path) -> str:
    """``chapters/07b_beyond_table1.py`` -> ``'7b'``."""
    return re.match(r"0*(\d+b?)_", path.name).group(1)


CHAPTERS = {chapter_id(p): p for p in CHAPTER_FILES}


# ---- reading the files -------------------------------------------------------------------------

def markdown_cells(path: Path) -> list[str]:
    """The markdown cells of a jupytext percent notebook, without the ``# `` prefixes."""
    cells, current = [], None
    for line in path.read_text().splitlines():
        if line.startswith("# %%"):
            if current is not None:
                cells.append("\n".join(current))
            current = [] if "[markdown]" in line else None
        elif current is not None:
            current.append(line[2:] if line.startswith("# ") else line.lstrip("#"))
    if current is not None:
        cells.append("\n".join(current))
    return cells


def prose(path: Path) -> str:
    """A file's student prose: the markdown cells of a notebook, or the whole Markdown file."""
    return "\n\n".join(markdown_cells(path)) if path.suffix == ".py" else path.read_text()


def plain(path: Path) -> str:
    """All of a file's text; a notebook's ``# `` prefixes removed (its headings read ``## ...``)."""
    lines = path.read_text().splitlines()
    if path.suffix != ".py":
        return "\n".join(lines)
    return "\n".join(line[2:] if line.startswith("# ") else line for line in lines)


def without_references(text: str) -> str:
    """Drop each ``## References`` section (it cites other works' chapters and sections)."""
    return re.sub(r"^## References\b.*?(?=^#{1,2} |\Z)", "", text, flags=re.S | re.M)


def sections(chapter: str) -> set[int]:
    headings = re.findall(r"^## (\d+)\. ", prose(CHAPTERS[chapter]), flags=re.M)
    return {int(number) for number in headings}


# ---- names, glossary entries, bold terms ---------------------------------------------------------

def normalize(text: str) -> str:
    text = text.lower().replace("\\epsilon", "\\varepsilon").replace("$", "")
    text = re.sub(r"(?<!\^)\*", "", text)  # emphasis marks, not the star of Q^*
    return re.sub(r"\s+", " ", text).strip(" .,:;")


def singular(name: str) -> str:
    return name[:-1] if len(name) > 3 and name.endswith("s") and not name.endswith("ss") else name


def entry_names(heading: str) -> list[str]:
    """``'Replay buffer (experience replay).'`` -> ``['replay buffer', 'experience replay']``."""
    heading = heading.rstrip(".")
    chunks = [re.sub(r"\([^()]*\)", " ", heading), *re.findall(r"\(([^()]*)\)", heading)]
    names = []
    for chunk in chunks:
        for piece in chunk.split(","):
            words = re.sub(r"^\s*\$[^$]*\$\s+|\s+\$[^$]*\$\s*$", "", piece)  # a standalone symbol
            name = normalize(words) or normalize(piece)
            if name:
                names.append(singular(name))
    return names


def glossary_entries() -> dict[str, str]:
    """Heading -> whole entry, for every glossary paragraph that opens with ``**Heading.**``."""
    entries = {}
    for paragraph in re.split(r"\n\s*\n", GLOSSARY.read_text()):
        match = re.match(r"\*\*(.+?)\*\*", paragraph.strip(), flags=re.S)
        if match and match.group(1).endswith("."):
            entries[re.sub(r"\s+", " ", match.group(1))] = re.sub(r"\s+", " ", paragraph.strip())
    return entries


def glossary_names() -> set[str]:
    return {name for heading in glossary_entries() for name in entry_names(heading)}


BLOCK_OPENER = re.compile(r"^(?:>\s*)*(?:(?:[*-]|\d+\.)\s+)?$")
LIST_MARKER = re.compile(r"^(?:>\s*)*(?:[*-]|\d+\.)\s")


def defined_terms(text: str) -> list[str]:
    """The bold spans of ``text`` that the convention counts as definitions."""
    text = re.sub(r"`[^`\n]*`", lambda m: "`" + "x" * (len(m.group(0)) - 2) + "`", text)  # code
    lines = text.split("\n")
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    terms = []
    for match in re.finditer(r"\*\*(.+?)\*\*", text, flags=re.S):
        span = re.sub(r"\s*\n\s*(?:>\s*)?", " ", match.group(1)).strip()
        if span.endswith((".", ":", "?", "!")):
            continue  # a run-in heading
        row = max(i for i, start in enumerate(starts) if start <= match.start())
        before = text[starts[row]:match.start()]
        previous = lines[row - 1].strip(" >") if row > 0 else ""
        if BLOCK_OPENER.match(before) and (previous == "" or LIST_MARKER.match(before)):
            continue  # the first words of a paragraph or a list item
        terms.append(span)
    return terms


def test_the_glossary_has_entries_and_every_chapter_is_found():
    assert len(glossary_entries()) >= 50
    assert {"1", "2", "3", "4", "5", "6", "7", "7b", "8", "9"} <= set(CHAPTERS)


@pytest.mark.parametrize("path", CHAPTER_FILES, ids=lambda p: p.name)
def test_every_term_a_chapter_defines_in_bold_is_in_the_glossary(path):
    names = glossary_names()
    terms = defined_terms(prose(path))
    missing = sorted({term for term in terms if singular(normalize(term)) not in names})
    assert not missing, (
        f"{rel(path)} sets these in bold inside a sentence, which marks a definition, but "
        f"{rel(GLOSSARY)} has no entry for them: {missing}. Add an entry, or set emphasis in "
        f"*italics* (see the convention at the top of the glossary)")


@pytest.mark.parametrize("heading", list(glossary_entries()))
def test_every_glossary_entry_names_chapters_that_use_the_term(heading):
    entry = glossary_entries()[heading]
    refs = re.search(r"\(ch\. ((?:\d+b?)(?:, \d+b?)*)\)\.?\s*$", entry)
    assert refs, f"glossary entry {heading!r} should end with its chapters, as in '(ch. 2, 3).'"
    names = entry_names(heading)
    for chapter in refs.group(1).split(", "):
        assert chapter in CHAPTERS, f"glossary entry {heading!r} names chapter {chapter}: none such"
        text = normalize(without_references(prose(CHAPTERS[chapter])))
        assert any(name in text for name in names), (
            f"glossary entry {heading!r} points to chapter {chapter}, whose prose never uses "
            f"any of {names}")


@pytest.mark.parametrize("path", CHAPTER_FILES, ids=lambda p: p.name)
def test_every_chapter_links_the_glossary(path):
    assert "](glossary.md)" in prose(path), f"{rel(path)} has no link to [glossary](glossary.md)"


# ---- cross-references ----------------------------------------------------------------------------

LIST_OF = r"(?:\s*(?:,|and|or|to|-|–)\s*)"
CHAPTER_REF = re.compile(rf"\b(?:chapters?|ch\.)\s+(\d+b?(?:{LIST_OF}\d+b?)*)(?![\d.]*\d)", re.I)
SECTION_REF = re.compile(rf"\bsections?\s+(\d+(?:\.\d+)?(?:{LIST_OF}\d+)*)", re.I)
CHAPTER_BEFORE = re.compile(r"(?:chapter|ch\.)\s+(\d+b?),?\s*$", re.I)
CHAPTER_AFTER = re.compile(r"\s+of\s+chapter\s+(\d+b?)", re.I)


def expand(numbers: str) -> list[str]:
    """``'4-6'`` -> ``['4', '5', '6']``; ``'3 and 5'`` -> ``['3', '5']``."""
    tokens = re.findall(r"\d+b?|-|–|\bto\b", numbers)
    out: list[str] = []
    for i, token in enumerate(tokens):
        if token in ("-", "–", "to"):
            if out and i + 1 < len(tokens):
                low, high = int(re.sub(r"\D", "", out[-1])), int(re.sub(r"\D", "", tokens[i + 1]))
                out.extend(str(k) for k in range(low + 1, high))
        else:
            out.append(token)
    return out


def reference_problems(path: Path) -> list[str]:
    text = without_references(plain(path))
    here = chapter_id(path) if path in CHAPTER_FILES else None
    problems = []
    for match in CHAPTER_REF.finditer(text):
        problems += [f"{match.group(0)!r}: there is no chapter {chapter}"
                     for chapter in expand(match.group(1)) if chapter not in CHAPTERS]
    for match in SECTION_REF.finditer(text):
        if "." in match.group(1):
            continue  # "section 3.6": another work's numbering
        named = (CHAPTER_BEFORE.search(text[max(0, match.start() - 20):match.start()])
                 or CHAPTER_AFTER.match(text[match.end():]))
        chapter = named.group(1) if named else here
        if chapter is None:
            problems.append(f"{match.group(0)!r} outside a chapter must say which chapter")
        elif chapter in CHAPTERS:
            known = sections(chapter)
            problems += [f"{match.group(0)!r}: chapter {chapter} has no section {number}"
                         for number in expand(match.group(1)) if int(number) not in known]
    exercises = {int(p.name[2:4]) for p in (ROOT / "solutions").glob("ex*.py")}
    for match in re.finditer(r"\bexercise\s+(\d+)\b|\bex(\d\d)\b", text, flags=re.I):
        if int(match.group(1) or match.group(2)) not in exercises:
            problems.append(f"{match.group(0)!r}: there is no such exercise")
    return problems


@pytest.mark.parametrize("path", STUDENT_FILES, ids=rel)
def test_every_chapter_section_and_exercise_reference_resolves(path):
    problems = reference_problems(path)
    assert not problems, f"{rel(path)}: " + "; ".join(problems)


# ---- nothing a student does not have -----------------------------------------------------------

FORBIDDEN = {
    r"\bseeds?\s+0\d\d\b": "a source file's seed number",
    r"\b\d{3}_[0-9a-f]{8,}": "a source file's name",
    r"COURSE\.md|CALIBRATION": "a file of the course's tooling",
    r"\bCI\b": "the course's CI",
    r"\b[Ii]ssue\s+#?\d+": "an issue number",
    r"/work/|shared/seeds": "a path on the authors' machines",
    r"\bour runs\b|\bthis machine\b|\bour machine\b": "the authors' runs or machine",
}
TOP_LEVEL = {p.name for p in ROOT.iterdir() if not p.name.startswith(".")}
REPO_PATH = re.compile(r"(?:\.\./)?[\w.-]+(?:/[\w.-]*)+")


def exists(target: Path) -> bool:
    if target.exists() or target.with_name(target.name + ".py").exists():
        return True
    return target.suffix == ".ipynb" and target.with_suffix(".py").exists()  # made by ./course


def imports(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(obj, attribute):
                return False
            obj = getattr(obj, attribute)
        return True
    return False


def unknown_names(path: Path) -> list[str]:
    problems = [f"{why}: {m.group(0)!r}" for pattern, why in FORBIDDEN.items()
                for m in re.finditer(pattern, path.read_text())]
    text = prose(path)
    for token in (t.strip() for t in re.findall(r"`([^`\n]+)`", text)):
        if re.fullmatch(r"bitflip_lib(?:\.\w+)+", token) and not imports(token):
            problems.append(f"`{token}` does not import")
        in_repo = token.startswith("../") or token.split("/")[0] in TOP_LEVEL
        if REPO_PATH.fullmatch(token) and in_repo and "NN" not in token:
            base = path.parent if token.startswith("../") else ROOT
            if not exists((base / token).resolve()):
                problems.append(f"`{token}` does not exist")
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if not re.match(r"[a-z]+:|#", target):
            if not exists((path.parent / target.split("#")[0]).resolve()):
                problems.append(f"link ({target}) does not exist")
    return problems


@pytest.mark.parametrize("path", STUDENT_FILES, ids=rel)
def test_student_text_names_only_what_a_student_has(path):
    problems = unknown_names(path)
    assert not problems, f"{rel(path)}: " + "; ".join(problems)


# ---- the parsers themselves ---------------------------------------------------------------------

def test_the_bold_convention_tells_definitions_from_headings():
    text = ("**Learning goals.** After this\n\nthe **action gap** is small; *Train*: a button\n"
            "* **A list item** opens a block\n> 1. **Check it**: pitfall\nso **Values** are\n"
            "**continued** mid-paragraph, `2**k` is code, **off-policy**: defined")
    assert defined_terms(text) == ["action gap", "Values", "continued", "off-policy"]


def test_cross_reference_and_name_parsing():
    assert expand("2-6") == ["2", "3", "4", "5", "6"] and expand("3 and 4") == ["3", "4"]
    assert expand("3, 7b") == ["3", "7b"]
    assert entry_names("Replay buffer (experience replay).") == ["replay buffer",
                                                                  "experience replay"]
    assert entry_names("Discount factor $\\gamma$.") == ["discount factor"]
    assert entry_names("$Q^\\pi$, $Q^*$ (action values).") == ["q^\\pi", "q^*", "action value"]
