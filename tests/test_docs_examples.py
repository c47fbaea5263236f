"""Every ```python example in docs/ runs, so the pages show code that works.

The convention (docs/index.md, "Examples in these pages"): the python blocks of a page run in
order in one namespace, in a fresh temporary folder. A block whose fence says
``title="needs postgres"`` or ``title="needs s3"`` gets the tests' server through the
environment (``DKDATA_PG_DSN``; ``DKDATA_S3_ENDPOINT``, ``DKDATA_S3_BUCKET`` and the AWS
credential variables). Any other title, or a python fence this test cannot classify, fails:
an example is never skipped silently.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"

# A fenced block: the opening fence's info string and the body up to the closing fence.
_FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_TITLE = re.compile(r'title="([^"]*)"')
NEEDS = {"needs postgres": "postgres", "needs s3": "s3"}


@dataclass(frozen=True)
class Example:
    page: str
    line: int
    code: str
    needs: str | None


def examples(page: Path) -> list[Example]:
    """The python blocks of ``page``; raises for a python block with an unknown title."""
    text = page.read_text()
    out: list[Example] = []
    for match in _FENCE.finditer(text):
        info = match.group(1).strip()
        if info.split(" ", 1)[0] != "python":
            continue
        title = _TITLE.search(info)
        needs = None
        if title is not None:
            if title.group(1) not in NEEDS:
                raise AssertionError(
                    f"{page.name}: python block titled {title.group(1)!r}; "
                    f"known titles: {', '.join(NEEDS)}"
                )
            needs = NEEDS[title.group(1)]
        line = text.count("\n", 0, match.start()) + 1
        out.append(Example(page.name, line, match.group(2), needs))
    return out


PAGES = sorted(p for p in DOCS.glob("*.md") if examples(p))


def test_pages_have_examples() -> None:
    # The glob finds the docs (a moved docs/ folder must not turn this suite into nothing).
    assert len(PAGES) >= 10, [p.name for p in PAGES]


def _server_env(needs: set[str], monkeypatch: pytest.MonkeyPatch) -> None:
    if "postgres" in needs:
        from .services.postgres import service as pg

        monkeypatch.setenv("DKDATA_PG_DSN", pg().dsn)
    if "s3" in needs:
        from .services.seaweedfs import service as s3

        server = s3()
        monkeypatch.setenv("DKDATA_S3_ENDPOINT", server.endpoint)
        monkeypatch.setenv("DKDATA_S3_BUCKET", server.bucket)
        monkeypatch.setenv("DKDATA_S3_PREFIX", f"docs-{uuid.uuid4().hex}/")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", server.access_key)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", server.secret_key)
        monkeypatch.setenv("AWS_REGION", server.region)


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_page_examples_run(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocks = examples(page)
    _server_env({b.needs for b in blocks if b.needs}, monkeypatch)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem.replace('-', '_')}"}
    for block in blocks:
        code = compile(block.code, f"docs/{block.page}:{block.line}", "exec")
        try:
            exec(code, namespace)
        except Exception as exc:
            raise AssertionError(
                f"the example at docs/{block.page} line {block.line} failed: {exc!r}"
            ) from exc
