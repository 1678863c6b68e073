"""Every relative link in the README, the docs and the notebooks' text leads to a file that exists, and every
``#anchor`` into a Markdown file to one of its headings (as GitHub names them)."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)\s]+)\)")  # [text](target) and ![alt](target)
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(markdown: Path) -> set[str]:
    found, seen, fenced = set(), {}, False
    for line in markdown.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (m := HEADING.match(line)):
            slug = github_anchor(m.group(1))
            found.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
            seen[slug] = seen.get(slug, 0) + 1
    return found


def texts() -> list[tuple[Path, str]]:
    """(file, its Markdown text): the top-level and docs/ Markdown files, and each notebook's Markdown cells."""
    out = [(f, f.read_text()) for f in sorted([*ROOT.glob("*.md"), *ROOT.glob("docs/*.md")])]
    for nb in sorted(ROOT.glob("notebooks/*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        out.append((nb, "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")))
    return out


def relative_links(text: str) -> list[str]:
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # code blocks are not links
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]


def test_the_anchor_rule_matches_githubs_on_known_headings():
    assert github_anchor("The UNet's shape: width, depth, attention") == "the-unets-shape-width-depth-attention"
    assert github_anchor("Notebook 07's full run, in detail") == "notebook-07s-full-run-in-detail"
    assert github_anchor("`make test` in tiers") == "make-test-in-tiers"


@pytest.mark.parametrize("source, text", texts(), ids=lambda x: x.name if isinstance(x, Path) else "")
def test_every_relative_link_resolves(source, text):
    broken = []
    for target in relative_links(text):
        path, _, anchor = target.partition("#")
        file = (source.parent / path).resolve() if path else source
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no heading with that anchor in {file.name}")
    assert not broken, f"{source.relative_to(ROOT)}: " + "; ".join(broken)
