"""The documentation against the code: README.md and docs/*.md link only to what exists, the README stays short and
shows a picture, its two commands are the ones the Makefile and CI run, and every command line, config key, repo
path and Python name the docs mention is one the code has. Fast: nothing is run but `make -n` and argparse."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib
import re
import shlex
import subprocess
import unicodedata
from pathlib import Path

import pytest
import yaml

from person_cluster.cli import _parser
from person_cluster.config import EXTRACTION_KEYS, Config

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]
MAX_LINES, MAX_CHARS, MAX_PICTURE_BYTES = 200, 12_000, 150_000

_FENCE = re.compile(r"^(```|~~~)(\w*)\n(.*?)^\1[ \t]*$", re.MULTILINE | re.DOTALL)
_LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def _blocks(text: str) -> list[tuple[str, str]]:
    """Fenced code blocks as (language, body)."""
    return [(m[2], m[3]) for m in _FENCE.finditer(text)]


def _prose(text: str) -> str:
    """The text without fenced blocks and code spans: where links and headings are."""
    return _CODE_SPAN.sub("", _FENCE.sub("", text))


def _spans(text: str) -> list[str]:
    return [m[2].strip() for m in _CODE_SPAN.finditer(_FENCE.sub("", text))]


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: its text (links and emphasis reduced to their words) in lower case, every
    character but letters, digits, '_', '-' and spaces removed, spaces made '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"[*`]", "", text).strip().lower()
    text = "".join(c for c in text if c in "_- " or unicodedata.category(c)[0] in "LN")
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading id of a markdown file; repeated headings get -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    out = set()
    for m in _HEADING.finditer(_FENCE.sub("", path.read_text(encoding="utf-8"))):
        slug = github_anchor(m[1])
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def test_github_anchors_are_made_as_github_makes_them():
    assert github_anchor("Scoring a run: evaluate and sweep") == "scoring-a-run-evaluate-and-sweep"
    assert github_anchor("The server's rules") == "the-servers-rules"
    assert github_anchor("`person_cluster.api`") == "person_clusterapi"
    assert github_anchor("Why [CenterFace](x.md) *now*") == "why-centerface-now"


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_every_relative_link_resolves(page):
    text = page.read_text(encoding="utf-8")
    broken = []
    for target in _LINK.findall(_prose(text)):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...: not ours to check
            continue
        file, _, anchor = target.partition("#")
        dest = (page.parent / file).resolve() if file else page
        if not dest.is_relative_to(REPO) or not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {_rel(dest)}")
    assert not broken, f"{_rel(page)}: " + "; ".join(broken)


def test_the_readme_is_short_and_shows_a_picture():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= MAX_LINES, f"README.md has {len(text.splitlines())} lines; move detail to docs/"
    assert len(text) <= MAX_CHARS, f"README.md has {len(text)} characters; move detail to docs/"
    pictures = [t for t in re.findall(r"!\[[^\]]*\]\(([^)\s]+)", _prose(text)) if not t.startswith("http")]
    assert pictures, "the README shows no picture"
    for picture in pictures:
        path = REPO / picture
        assert path.suffix == ".png" and path.is_file(), picture
        assert path.stat().st_size <= MAX_PICTURE_BYTES, f"{picture}: {path.stat().st_size} bytes"


def test_every_committed_picture_is_small():
    for path in (REPO / "docs" / "img").glob("*"):
        assert path.stat().st_size <= MAX_PICTURE_BYTES, f"{_rel(path)}: {path.stat().st_size} bytes"


def test_the_readme_commands_are_the_makefiles_and_ci_s():
    text = README.read_text(encoding="utf-8")
    section = text.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    lines = [line.split("#", 1)[0].strip() for _, body in _blocks(section) for line in body.splitlines()]
    commands = [line for line in lines if line]
    assert len(commands) == 2 and commands[1] == "make test", commands
    run = shlex.split(commands[0])
    assert run[:2] == ["make", "run"], commands[0]
    given = dict(arg.split("=", 1) for arg in run[2:])
    assert set(given) == {"VIDEO", "OUT"}, commands[0]
    # What make would do (-n: print, run nothing): the main job on exactly that video and OUT, and the tests.
    dry = subprocess.run(["make", "-n", "-C", str(REPO), *run[1:]], capture_output=True, text=True, check=True).stdout
    assert f'person-cluster run "{given["VIDEO"]}" --out "{given["OUT"]}"' in dry, dry
    dry = subprocess.run(["make", "-n", "-C", str(REPO), "test"], capture_output=True, text=True, check=True).stdout
    assert "-m pytest" in dry, dry
    ci = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert "make test" in [line for line in ci if line and not line.startswith("#")], ".ci/run does not run make test"


def _command_lines() -> list[tuple[str, str, bool]]:
    """Every `person-cluster ...` command line of the docs: (page, line, whole), ``whole`` for those written out in
    full (code blocks and the README's table of commands), the others only name a command and its options."""
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for lang, body in _blocks(text):
            if lang in ("bash", "sh", ""):
                found += [(_rel(page), line.split(" #", 1)[0].strip(), True) for line in body.splitlines()
                          if line.strip().startswith("person-cluster ")]
        table = page == README
        for span in _spans(text):
            if span.startswith("person-cluster "):
                found.append((_rel(page), span, table and f"| `{span}` |" in text))
    assert found
    return found


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _as_arguments(line: str) -> list[str]:
    """A documented command line as arguments: [optional] parts kept, a|b|c as a, X... as X, '...' dropped."""
    line = line.replace("[", " ").replace("]", " ")
    words = [w.split("|", 1)[0].removesuffix("...") for w in shlex.split(line)[1:]]
    return [w for w in words if w]


@pytest.mark.parametrize("page,line,whole", _command_lines(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_command_line_in_the_docs_is_one_the_cli_takes(page, line, whole):
    subs = _subcommands()
    args = _as_arguments(line)
    if args and args[0] in ("--help", "-h", "--version"):  # the program's own options
        return
    assert args and args[0] in subs, f"{page}: {line!r}: no command {args[:1]} (known: {', '.join(subs)})"
    sub = subs[args[0]]
    options = {s: a for a in sub._actions for s in a.option_strings}
    for word in args[1:]:
        if word == "--":
            break
        if word.startswith("-"):
            assert word.split("=", 1)[0] in options, f"{page}: {line!r}: `{args[0]}` has no option {word}"
    if whole:  # parses as the CLI parses it (placeholders stand for values; a number where one is needed)
        for i, word in enumerate(args[:-1]):
            if word in options and options[word].type is int and not args[i + 1].isdigit():
                args[i + 1] = "0"
        try:
            _parser().parse_args(args)
        except SystemExit:
            pytest.fail(f"{page}: {line!r} does not parse: {args}")


def test_the_configuration_page_lists_every_key_with_its_default():
    page = REPO / "docs" / "configuration.md"
    rows = {}
    for line in page.read_text(encoding="utf-8").splitlines():
        m = re.match(r"\| `([a-z_]+\.[a-z_]+)` \| `([^`]*)` \| (yes)? *\|", line)
        if m:
            rows[m[1]] = (yaml.safe_load(m[2]), bool(m[3]))
    config = Config()
    keys = {f"{s.name}.{f.name}": getattr(getattr(config, s.name), f.name)
            for s in dataclasses.fields(config) for f in dataclasses.fields(getattr(config, s.name))}
    assert sorted(set(keys) - set(rows)) == [], "keys of person_cluster/config.py missing from docs/configuration.md"
    assert sorted(set(rows) - set(keys)) == [], "docs/configuration.md lists keys the config does not have"
    wrong = {k: (rows[k][0], v) for k, v in keys.items() if rows[k][0] != v}
    assert not wrong, f"documented default differs from the code's (documented, code): {wrong}"
    run = {k for k, (_, extracted) in rows.items() if extracted}
    assert run == set(EXTRACTION_KEYS), f"the 'run' column differs from config.EXTRACTION_KEYS: {run ^ set(EXTRACTION_KEYS)}"


def _resolve(dotted: str) -> object:
    """``person_cluster.a.b.c``: the longest importable module, then attributes."""
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:n]))
        except ImportError:
            continue
        for name in parts[n:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(dotted)


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_every_python_name_and_repo_path_the_docs_mention_exists(page):
    text = page.read_text(encoding="utf-8")
    api = importlib.import_module("person_cluster.api")
    missing = []
    for lang, body in _blocks(text):
        if lang != "python":
            continue
        for node in ast.walk(ast.parse(body)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("person_cluster"):
                module = importlib.import_module(node.module)
                missing += [f"{node.module}.{a.name}" for a in node.names if not hasattr(module, a.name)]
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "api":
                missing += [] if hasattr(api, node.attr) else [f"api.{node.attr}"]
    for span in _spans(text):
        name = re.match(r"(person_cluster(?:\.\w+)+|api\.(?!py$)\w+)(?:\(|$)", span)
        if name:
            try:
                _resolve(name[1] if name[1].startswith("person_cluster") else "person_cluster." + name[1])
            except (ImportError, AttributeError):
                missing.append(name[1])
        path = re.match(r"(?:person_cluster|configs|scripts|evaluation|tests|docs|\.ci)/[\w./-]*$", span)
        if path and not (REPO / span).exists():
            missing.append(span)
    assert not missing, f"{_rel(page)} mentions what the code does not have: {', '.join(missing)}"
