"""docs/errors.md has one section per exception of dataknobs_data.exceptions, with its bases.

The list is taken from the module, so a new exception without a section, a section for an
exception that is gone, or a changed base class fails here; the messages on the page are
checked by the page's own example (tests/test_docs_examples.py).
"""

from __future__ import annotations

import re
from pathlib import Path

from dataknobs_data import exceptions

PAGE = Path(__file__).resolve().parent.parent / "docs" / "errors.md"
_SECTION = re.compile(r"^### `(\w+)`\nBases: ([^.]+)\.", re.MULTILINE)


def _documented() -> dict[str, list[str]]:
    return {
        name: [b.strip().strip("`") for b in bases.split(",")]
        for name, bases in _SECTION.findall(PAGE.read_text())
    }


def _classes() -> dict[str, type[BaseException]]:
    out: dict[str, type[BaseException]] = {}
    for name in exceptions.__all__:
        cls = getattr(exceptions, name)
        if cls.__name__ == name:  # aliases (DataknobsError) share their class's section
            out[name] = cls
    return out


def test_every_exception_has_a_section() -> None:
    documented, classes = _documented(), _classes()
    assert len(classes) >= 20
    assert sorted(documented) == sorted(classes)


def test_sections_name_the_bases() -> None:
    documented = _documented()
    for name, cls in _classes().items():
        assert documented[name] == [b.__name__ for b in cls.__bases__], name
