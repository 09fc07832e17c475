"""The README and the docs pages link only to files of the repository (a clone has no
`../shared/`), and every such link resolves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("**/*.md"))]
# [text](target) outside code spans; images too.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    return LINK.findall(text)


def test_the_contract_pages_exist():
    for name in ("landing-data.md", "metric-pack.md", "http-api.md", "sql-endpoint.md"):
        assert (REPO / "docs" / name).is_file(), name


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_links_stay_in_the_repository_and_resolve(page):
    for target in links(page):
        if re.match(r"^[a-z]+://", target) or target.startswith("mailto:"):
            assert target.startswith(("http://127.0.0.1", "http://localhost")), (page.name, target)
            continue
        if target.startswith("#"):
            continue
        path = (page.parent / target.split("#")[0]).resolve()
        assert path.is_relative_to(REPO), (page.name, target)
        assert path.exists(), (page.name, target)


def test_the_readme_links_every_contract_page():
    targets = set(links(REPO / "README.md"))
    for name in ("landing-data.md", "metric-pack.md", "http-api.md", "sql-endpoint.md"):
        assert f"docs/{name}" in targets, name
