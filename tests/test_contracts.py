"""The committed event schemas and AsyncAPI documents are exactly what the code generates."""

from __future__ import annotations

from pathlib import Path

import pytest

from ekatalog.cli import generated_documents

DOCS = Path(__file__).resolve().parent.parent / "docs"
GENERATED = generated_documents()


@pytest.mark.parametrize("relative", sorted(GENERATED), ids=str)
def test_committed_document_matches_the_code(relative: Path) -> None:
    committed = DOCS / relative
    assert committed.exists(), f"docs/{relative} is not committed; run `make schemas`"
    assert committed.read_text() == GENERATED[relative], (
        f"docs/{relative} differs from the code. A compatible change (a new optional field) "
        "needs `make schemas` and a commit; anything else is a new event version (.v2)."
    )


def test_no_stale_documents_remain() -> None:
    committed = {
        p.relative_to(DOCS) for folder in ("events", "asyncapi") for p in (DOCS / folder).glob("*")
    }
    assert committed <= set(GENERATED), f"stale: {sorted(map(str, committed - set(GENERATED)))}"
