"""Counts quoted in README.md and docs/ equal what the code prints (see doc_counts.py)."""

import pytest
from doc_counts import REPO, counts, documents, drifted, write

MARKED = {"models-and-training.md": "digits-resnet", "comparing.md": "digits-resnet",
          "cost-model.md": "small-cnn"}


def test_every_documented_count_is_what_the_code_prints():
    stale = drifted()
    assert not stale, "stale docs (python tests/doc_counts.py --write fixes them):\n" + \
        "\n".join(c.describe() for c in stale)


@pytest.mark.parametrize("page, model", MARKED.items())
def test_pages_that_quote_counts_mark_them(page, model):
    assert any(model in c.command for c in counts(REPO / "docs" / page))


def test_every_page_is_read():
    assert {p.name for p in documents()} >= {"README.md", *MARKED}


def _page(tmp_path, text):
    page = tmp_path / "page.md"
    page.write_text(text, encoding="utf-8")
    return page


def test_a_drifted_count_is_found_with_its_line_and_rewritten(tmp_path):
    marker = "<!-- count: artemis cost --model he-cnn @ {} -->"
    page = _page(tmp_path, "\n".join([
        f"conv1 has {marker.format('layers/0/rotations')}8 rotations,",
        f"the model {marker.format('total/pmult')}**2,320** PMult.",
        '<!-- count after "keys": artemis cost --model he-cnn @ total/keys -->',
        "```json", '{"rotations": 1, "keys": 3}', "```"]))
    stale = drifted([page])
    assert [(c.line, c.documented) for c in stale] == [(2, "2,320"), (3, "3")]
    assert stale[0].actual == "97" and "`artemis cost --model he-cnn` prints 97" in \
        stale[0].describe()
    write([page])
    assert drifted([page]) == []
    assert "**97** PMult" in page.read_text() and '"keys": 27' in page.read_text()


def test_a_marker_without_its_number_is_an_error(tmp_path):
    page = _page(tmp_path, "<!-- count: artemis cost --model he-cnn @ total/keys --> keys")
    with pytest.raises(ValueError, match="no number after the marker"):
        counts(page)
