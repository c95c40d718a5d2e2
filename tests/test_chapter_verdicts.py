"""Every number the prose quotes comes from a cell that asserts.

The book's rule (issue 7): a sentence that quotes computed numbers is backed by an
assert, and the simplest way to hold to it is that every glued number in the prose is
glued by a code cell that also asserts. This module checks that rule statically over
``chapters/*.md`` (MyST Markdown notebooks), without executing anything:

- every name the prose reads with MyST's eval role (``{eval}`f"{G.name:.3f}"```, see
  ``lrtools.prose``) or with a glue role (``{glue:md}`...```) is glued
  (``glue("name", ...)``) by at least one code cell, and every cell that glues it
  contains a real ``assert`` (not one whose condition is a constant);
- the first cell that glues a name comes before the prose that reads it: the site
  and JupyterLab evaluate the text in order, as far as the cells have run;
- an eval role reads glued numbers (``G.name``) only, so the rule above covers it;
- no code cell is tagged ``remove-cell``: myst-nb's inline execution runs such a cell
  only when a later cell it renders needs the kernel, so a number it glues is not there
  yet for the text right after it (``remove-input`` and ``remove-output`` hide a cell
  from the site just as well, and it runs in its turn);
- every prose sentence quoting two or more glued numbers (a comparison, usually) is
  reported with its sentence when one of its numbers breaks the rule above;
- a glue name the check cannot resolve (neither a string nor an f-string with some
  fixed text) fails loudly, so the check is never silently skipped. Figures glued
  for ``{glue:figure}`` directives need no assert.

The parser is deliberately small: code cells are ``{code-cell}`` fences, everything
else is prose (directive bodies such as exercises and solutions included).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHAPTERS = sorted((Path(__file__).parent.parent / "chapters").glob("*.md"))

FENCE = re.compile(r"^(?P<ticks>`{3,}|~{3,})\s*(?P<info>.*)$")
# A role in prose that shows a computed value: {eval}`f"{G.name:.3f}"`, {glue:md}`name`
ROLE = re.compile(r"\{(?P<role>eval|glue(?::[a-z]*)?)\}`(?P<body>[^`]+)`")
GLUED = re.compile(r"\bG\.(?P<name>[A-Za-z_]\w*)")
# Sentence ends: a full stop, "!" or "?" followed by white space and a capital, a
# bullet or a bold opening (glue roles are replaced by placeholders first).
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z*(\-$])|\n\s*\n|\n\s*[-*] ")


@dataclass
class Cell:
    """A ``{code-cell}``: its Python source (options stripped) and first line."""

    source: str
    line: int
    prose_line: int = 0  # the line of the chapter's prose (cells removed) it sits at
    options: str = ""  # its option lines (":tags: ..." or a YAML block)


@dataclass
class Chapter:
    cells: list[Cell] = field(default_factory=list)
    prose: str = ""


def parse_chapter(text: str) -> Chapter:
    """Split a MyST notebook into code cells and prose.

    The front matter and the fences' option blocks (``:tags: ...`` lines or a
    ``---`` YAML block at the top of a cell) are not Python and are dropped.
    """
    lines = text.splitlines()
    if lines and lines[0].strip() == "---":
        end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
        if end is not None:
            lines = [""] * (end + 1) + lines[end + 1 :]
    chapter = Chapter()
    prose: list[str] = []
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i].strip())
        if match and match["info"].startswith("{code-cell}"):
            ticks, start = match["ticks"], i + 1
            j = start
            while j < len(lines) and not (
                lines[j].strip().startswith(ticks[0] * len(ticks))
                and set(lines[j].strip()) == {ticks[0]}
            ):
                j += 1
            if j == len(lines):
                raise ValueError(f"code cell opened on line {i + 1} is never closed")
            chapter.cells.append(
                Cell(
                    _strip_options(lines[start:j]),
                    start + 1,
                    len(prose),
                    _options(lines[start:j]),
                )
            )
            prose.append("")  # a cell ends a paragraph
            i = j + 1
            continue
        prose.append(lines[i])
        i += 1
    chapter.prose = "\n".join(prose)
    return chapter


def _options(body: list[str]) -> str:
    """A cell's option lines: a ``---`` YAML block at its top, or ``:key:`` lines."""
    if body and body[0].strip() == "---":
        end = next(
            (k for k in range(1, len(body)) if body[k].strip() == "---"), len(body)
        )
        return "\n".join(body[1:end])
    k = 0
    while k < len(body) and body[k].lstrip().startswith(":"):
        k += 1
    return "\n".join(body[:k])


def _strip_options(body: list[str]) -> str:
    if body and body[0].strip() == "---":
        end = next(
            (k for k in range(1, len(body)) if body[k].strip() == "---"), len(body)
        )
        body = [""] * (end + 1) + body[end + 1 :]
    else:
        k = 0
        while k < len(body) and body[k].lstrip().startswith(":"):
            k += 1
        body = [""] * k + body[k:]
    # IPython magics and shell escapes are not Python.
    return "\n".join("" if ln.lstrip()[:1] in "%!" else ln for ln in body)


@dataclass
class Glues:
    """What one cell glues: fixed names, f-string patterns, unresolvable calls."""

    names: set[str] = field(default_factory=set)
    patterns: list[re.Pattern] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)

    def covers(self, name: str) -> bool:
        return name in self.names or any(p.fullmatch(name) for p in self.patterns)


def _is_glue_call(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    return (isinstance(func, ast.Name) and func.id == "glue") or (
        isinstance(func, ast.Attribute) and func.attr == "glue"
    )


def _loop_strings(loop: ast.For) -> dict[str, list[str]]:
    """The string values a ``for`` loop over a literal list gives its variables.

    ``for name, x in [("a", a), ("b", b)]`` binds ``name`` to "a" and "b" (``x`` is
    not a string constant and stays unbound).
    """
    if not isinstance(loop.iter, (ast.List, ast.Tuple)):
        return {}
    targets = loop.target.elts if isinstance(loop.target, ast.Tuple) else [loop.target]
    bound: dict[str, list[str]] = {}
    for k, target in enumerate(targets):
        if not isinstance(target, ast.Name):
            continue
        values = []
        for element in loop.iter.elts:
            item = element
            if isinstance(loop.target, ast.Tuple):
                if not isinstance(element, ast.Tuple) or len(element.elts) != len(
                    targets
                ):
                    break
                item = element.elts[k]
            if not (isinstance(item, ast.Constant) and isinstance(item.value, str)):
                break
            values.append(item.value)
        else:
            bound[target.id] = values
    return bound


def _glue_calls(node: ast.AST, bound: dict[str, list[str]]):
    """Each glue call under ``node``, with the loop variables bound around it."""
    if isinstance(node, ast.For):
        bound = {**bound, **_loop_strings(node)}
    if _is_glue_call(node):
        yield node, bound
    for child in ast.iter_child_nodes(node):
        yield from _glue_calls(child, bound)


def cell_glues(source: str) -> Glues:
    """The names glued by ``source``.

    A string is a name; a variable bound by an enclosing ``for`` over a literal list
    gives one name per value; an f-string becomes a pattern over its fixed text
    (``f"m_sd_{name}"`` matches ``m_sd_01``), its loop variables filled in when bound.
    """
    glues = Glues()
    for node, bound in _glue_calls(ast.parse(source), {}):
        first = node.args[0] if node.args else None
        if first is None:
            first = next((k.value for k in node.keywords if k.arg == "name"), None)
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            glues.names.add(first.value)
        elif isinstance(first, ast.Name) and first.id in bound:
            glues.names.update(bound[first.id])
        elif isinstance(first, ast.JoinedStr):
            parts = []
            for part in first.values:
                if isinstance(part, ast.Constant):
                    parts.append(re.escape(part.value))
                elif (
                    isinstance(part.value, ast.Name)
                    and part.value.id in bound
                    and part.conversion == -1
                    and part.format_spec is None
                ):
                    parts.append(
                        "(?:" + "|".join(map(re.escape, bound[part.value.id])) + ")"
                    )
                else:
                    parts.append(r".+?")
            if all(p == r".+?" for p in parts):
                glues.unresolved.append(ast.unparse(node)[:80])
            else:
                glues.patterns.append(re.compile("".join(parts)))
        else:
            glues.unresolved.append(ast.unparse(node)[:80])
    return glues


def has_real_assert(source: str) -> bool:
    """True if ``source`` holds an ``assert`` whose condition is not a constant."""
    return any(
        isinstance(node, ast.Assert) and not isinstance(node.test, ast.Constant)
        for node in ast.walk(ast.parse(source))
    )


def prose_references(prose: str) -> list[str]:
    """Names the roles read: each ``G.name`` of an eval role, a glue role's name."""
    return [name for _, name in _located_references(prose)]


def _located_references(prose: str) -> list[tuple[int, str]]:
    """(line in ``prose``, name) for each name a role reads; "" for an eval role
    that reads no glued number."""
    found = []
    for m in ROLE.finditer(prose):
        line = prose.count("\n", 0, m.start())
        if m["role"] == "eval":
            names = [g["name"] for g in GLUED.finditer(m["body"])] or [""]
        else:
            names = [m["body"].split(":")[0].strip()]
        found.extend((line, name) for name in names)
    return found


def sentences(prose: str) -> list[str]:
    """Prose split into sentences, with glue roles kept intact."""
    roles: list[str] = []

    def hold(match: re.Match) -> str:
        roles.append(match[0])
        return f"\0{len(roles) - 1}\0"

    held = ROLE.sub(hold, prose)
    parts = SENTENCE_END.split(held)
    return [
        re.sub(r"\0(\d+)\0", lambda m: roles[int(m[1])], " ".join(p.split()))
        for p in parts
        if p and p.strip()
    ]


def violations(text: str) -> list[str]:
    """Every breach of the rule in one chapter's text, as readable messages."""
    chapter = parse_chapter(text)
    problems: list[str] = []
    glues_by_cell = []
    for cell in chapter.cells:
        try:
            glues = cell_glues(cell.source)
            asserts = has_real_assert(cell.source)
        except SyntaxError as error:
            problems.append(f"cell at line {cell.line} is not Python: {error}")
            continue
        for call in glues.unresolved:
            problems.append(
                f"cell at line {cell.line}: cannot resolve the name of {call!r}; "
                "glue a string or an f-string with fixed text"
            )
        glues_by_cell.append((cell, glues, asserts))

    def breach(name: str) -> str | None:
        cells = [(c, a) for c, g, a in glues_by_cell if g.covers(name)]
        if not cells:
            return f"{name!r} is quoted in the prose but glued by no code cell"
        lazy = [c.line for c, a in cells if not a]
        if lazy:
            return (
                f"{name!r} is glued by the cell at line(s) {lazy}, which asserts "
                "nothing: the cell that glues a quoted number must assert its claim"
            )
        return None

    for cell in chapter.cells:
        if re.search(r"^\s*:?tags:.*\bremove-cell\b", cell.options, re.M):
            problems.append(
                f"cell at line {cell.line} is tagged remove-cell; tag it remove-input "
                "and remove-output (a removed cell runs late when executed inline)"
            )
    located = _located_references(chapter.prose)
    if any(name == "" for _, name in located):
        problems.append(
            "an eval role reads no glued number (G.name): glue what the text shows"
        )
    for name in dict.fromkeys(name for _, name in located if name):
        message = breach(name)
        if message:
            problems.append(message)
            continue
        first_glue = min(c.prose_line for c, g, _ in glues_by_cell if g.covers(name))
        first_read = min(line for line, n in located if n == name)
        if first_read < first_glue:
            problems.append(
                f"{name!r} is read by the prose at line {first_read + 1} of the text "
                "before the cell that glues it has run"
            )
    for sentence in sentences(chapter.prose):
        names = prose_references(sentence)
        if len(names) >= 2:
            bad = [n for n in dict.fromkeys(names) if breach(n)]
            if bad:
                problems.append(
                    f"a sentence compares glued numbers {bad} that no asserting "
                    f"cell produces: {sentence[:160]!r}"
                )
    return problems


# --------------------------------------------------------------------------------------
# The book's chapters
# --------------------------------------------------------------------------------------


def test_there_are_chapters():
    assert CHAPTERS, "no chapters/*.md found"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_every_quoted_number_comes_from_an_asserting_cell(path):
    problems = violations(path.read_text(encoding="utf-8"))
    assert not problems, "\n".join([f"{path.name}:", *problems])


# --------------------------------------------------------------------------------------
# The check itself can fail
# --------------------------------------------------------------------------------------

HEADER = """---
jupytext:
  text_representation:
    format_name: myst
---
"""


def chapter(*parts: str) -> str:
    return HEADER + "\n".join(parts)


def code(source: str, options: str = "") -> str:
    return f"```{{code-cell}} ipython3\n{options}{source}\n```\n"


def test_a_quoted_number_glued_without_assert_is_caught():
    text = chapter(
        code('glue("gap", 0.02, display=False)'),
        'The gap is {eval}`f"{G.gap:.3f}"`.',
    )
    (problem,) = violations(text)
    assert "'gap'" in problem and "asserts nothing" in problem


def test_a_quoted_number_glued_with_assert_passes():
    text = chapter(
        code('gap = 0.02\nassert gap < 0.05\nglue("gap", gap, display=False)'),
        'The gap is {eval}`f"{G.gap:.3f}"`.',
    )
    assert violations(text) == []


def test_an_assert_that_cannot_fail_does_not_count():
    text = chapter(
        code(
            'assert True\nglue("gap", 0.02, display=False)',
            ":tags: [remove-input, remove-output]\n",
        ),
        "The gap is {eval}`G.gap`.",
    )
    assert len(violations(text)) == 1


def test_a_comparison_sentence_is_reported_with_its_numbers():
    text = chapter(
        code('glue("a", 0.034, display=False)\nglue("b", 0.022, display=False)'),
        'The calmest run swings {eval}`f"{G.a:.3f}"`, less than {eval}`f"{G.b:.3f}"`.',
    )
    problems = violations(text)
    assert any("a sentence compares" in p and "calmest" in p for p in problems)
    assert len(problems) == 3  # a, b, and the sentence quoting both


def test_one_lazy_cell_among_several_is_caught():
    text = chapter(
        code('assert 1 < 2 * x\nglue("x", x, display=False)'),
        code('glue("x", 2 * x, display=False)'),
        "x is {eval}`G.x`.",
    )
    assert len(violations(text)) == 1


def test_f_string_names_are_matched_and_unresolvable_ones_fail():
    ok = chapter(
        code(
            'for lr, name in [(0.1, "01")]:\n'
            '    assert lr > 0\n    glue(f"m_sd_{name}", lr, display=False)'
        ),
        'It is {eval}`f"{G.m_sd_01:.3f}"`.',
    )
    assert violations(ok) == []
    bad = chapter(code('n = "x"\nassert n\nglue(n, 1, display=False)'))
    (problem,) = violations(bad)
    assert "cannot resolve" in problem


def test_loop_variables_over_literal_lists_are_resolved():
    source = (
        'for name, x in [("gap", gap), ("drop", drop)]:\n'
        "    glue(name, x, display=False)\n"
        '    glue(f"{name}_low", x, display=False)'
    )
    glues = cell_glues(source)
    assert glues.names == {"gap", "drop"} and not glues.unresolved
    assert glues.covers("gap_low") and not glues.covers("other_low")


def test_a_quoted_name_nobody_glues_is_caught():
    text = chapter(code("assert 1 + 1 == 2"), 'See {eval}`f"{G.ghost:.2f}"`.')
    assert violations(text) == [
        "'ghost' is quoted in the prose but glued by no code cell"
    ]


def test_fences_in_prose_are_prose():
    text = chapter(
        code('assert late > 0\nglue("late", late, display=False)'),
        "```{figure} _figures/fig.png\n:name: fig-x\n\nA caption.\n```\n",
        '````{solution} ex\nAbout {eval}`f"{G.late:.2f}"`.\n````',
    )
    assert violations(text) == []


def test_a_number_read_before_its_cell_has_run_is_caught():
    text = chapter(
        "In short: {eval}`G.gap`.",
        code('gap = 0.02\nassert gap < 0.05\nglue("gap", gap, display=False)'),
    )
    (problem,) = violations(text)
    assert "'gap'" in problem and "before the cell that glues it" in problem


def test_an_eval_role_must_read_glued_numbers():
    text = chapter(code("gap = 0.02\nassert gap < 0.05"), "The gap is {eval}`gap`.")
    (problem,) = violations(text)
    assert "reads no glued number" in problem


def test_glue_md_roles_still_count():
    text = chapter(
        code('glue("snippet", "x = 1", display=False)'), "{glue:md}`snippet`"
    )
    (problem,) = violations(text)
    assert "'snippet'" in problem and "asserts nothing" in problem


def test_sentences_keep_roles_whole():
    parts = sentences('One {eval}`f"{G.a:.3f}"` is. Two {eval}`G.b` and {eval}`G.c`.')
    assert parts == ['One {eval}`f"{G.a:.3f}"` is.', "Two {eval}`G.b` and {eval}`G.c`."]


@pytest.mark.parametrize(
    "options", [":tags: [remove-cell]\n", "---\ntags: [remove-cell]\n---\n"]
)
def test_a_removed_cell_is_caught(options):
    text = chapter(code('gap = 0.02\nassert gap < 0.05\nglue("gap", gap)', options))
    (problem,) = violations(text)
    assert "remove-cell" in problem
