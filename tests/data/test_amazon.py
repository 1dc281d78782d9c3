"""Amazon 2014 reader on tiny gzip files: strict-JSON reviews, loose-JSON metadata, TIGER item texts."""

from __future__ import annotations

import gzip
import json

import pytest

from tidrec.data import DataConfig, build_dataset
from tidrec.data.amazon import amazon_text, read_meta
from tidrec.errors import InputError

REVIEWS = [
    {"reviewerID": "A2", "asin": "B1", "unixReviewTime": 1400000000, "overall": 5.0},
    {"reviewerID": "A1", "asin": "B2", "unixReviewTime": 1300000000},
    {"reviewerID": "A1", "asin": "B1", "unixReviewTime": 1200000000},
    {"reviewerID": "A2", "asin": "B3", "unixReviewTime": 1400000000},  # ties with line 1
    {"reviewerID": "A1", "asin": "B3", "unixReviewTime": 1300000000},  # ties with line 2
    {"reviewerID": "A2", "asin": "B2", "unixReviewTime": 1100000000},
]
META = [
    "{'asin': 'B1', 'title': \"L'Oreal Paris Mascara\", 'price': 7.5, 'brand': \"L'Oreal\", "
    "'categories': [['Beauty', 'Makeup', 'Eyes'], ['Beauty', 'Makeup']]}",
    "{'asin': 'B0', 'title': 'Never reviewed', 'categories': [['Beauty']]}",
    "{'asin': 'B2', 'categories': [['Beauty', 'Skin Care']], 'salesRank': {'Beauty': 12}}",
    '{"asin": "B3", "title": "Strict JSON line", "price": 12}',
]


def _write(folder, reviews=None, meta=None, category="Beauty"):
    folder.mkdir(exist_ok=True)
    lines = [json.dumps(r) for r in (REVIEWS if reviews is None else reviews)]
    with gzip.open(folder / f"reviews_{category}_5.json.gz", "wt", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    with gzip.open(folder / f"meta_{category}.json.gz", "wt", encoding="utf-8") as handle:
        handle.write("\n".join(META if meta is None else meta) + "\n")
    return folder


def test_amazon_reviews_and_loose_meta(tmp_path):
    data = build_dataset(DataConfig(dataset="amazon", amazon_dir=_write(tmp_path / "amz")))
    assert data.name == "amazon-Beauty"
    assert data.user_ids.tolist() == ["A2", "A1"]
    assert data.item_ids.tolist() == ["B1", "B2", "B3"]  # B0 has no review: not in the catalogue
    assert data.item_texts == [
        "Title: L'Oreal Paris Mascara. Brand: L'Oreal. Categories: Beauty, Makeup, Eyes. Price: 7.50.",
        "Categories: Beauty, Skin Care.",
        "Title: Strict JSON line. Price: 12.00.",
    ]
    assert [data.item_ids[data.sequence(u)].tolist() for u in range(2)] == [
        ["B2", "B1", "B3"],  # B1 and B3 tie: file order
        ["B1", "B2", "B3"],  # B2 and B3 tie: file order
    ]


def test_amazon_text_handles_string_price_and_missing_fields():
    assert amazon_text({"asin": "x", "price": "$3", "categories": [["A", "B"], ["A", "C"]]}) == (
        "Categories: A, B, C. Price: $3."
    )
    assert amazon_text({"asin": "x"}) == ""


def test_meta_only_parses_wanted_lines(tmp_path):
    folder = _write(tmp_path / "amz", meta=[*META, "{'asin': 'B9', 'title': broken python"])
    meta = read_meta(folder / "meta_Beauty.json.gz", wanted={"B1", "B2"})
    assert meta.frame["item_id"].to_list() == ["B1", "B2"]
    with pytest.raises(InputError, match=r"meta_Beauty.json.gz line 5: neither a Python dict literal"):
        read_meta(folder / "meta_Beauty.json.gz")


def _plus(user, asin, **time):
    return [*REVIEWS, {"reviewerID": user, "asin": asin, **time}]


META_B2_AGAIN = [*META, "{'asin': 'B2', 'title': 'Other'}"]


@pytest.mark.parametrize(
    ("reviews", "meta", "message"),
    [
        (_plus("A3", "B1"), None, r"reviews_Beauty_5.json.gz line 7: missing field 'unixReviewTime'"),
        (_plus("A3", "B1", unixReviewTime="soon"), None, r"line 7: unixReviewTime 'soon' is not a number"),
        (_plus("A1", "B7", unixReviewTime=1), None, r"line 7: item 'B7' is not in .*meta_Beauty.json.gz"),
        (_plus("A3", "B1", unixReviewTime=1), None, r"line 7: user 'A3' has 1 interaction"),
        (None, META_B2_AGAIN, r"meta_Beauty.json.gz line 5: item 'B2' has a different text than at line 3"),
        ([], None, r"reviews_Beauty_5.json.gz: file is empty"),
    ],
    ids=["missing-field", "non-numeric-time", "item-without-meta", "one-interaction", "two-texts", "empty"],
)
def test_amazon_bad_input(tmp_path, reviews, meta, message):
    folder = _write(tmp_path / "amz", reviews, meta)
    with pytest.raises(InputError, match=message):
        build_dataset(DataConfig(dataset="amazon", amazon_dir=folder))


def test_amazon_non_utf8_and_missing_files(tmp_path):
    folder = _write(tmp_path / "amz")
    with gzip.open(folder / "reviews_Beauty_5.json.gz", "ab") as handle:
        handle.write(b'{"reviewerID": "A\xff", "asin": "B1", "unixReviewTime": 1}\n')
    with pytest.raises(InputError, match=r"reviews_Beauty_5.json.gz line 7: not valid UTF-8"):
        build_dataset(DataConfig(dataset="amazon", amazon_dir=folder))
    with pytest.raises(InputError, match=r"reviews_Toys_5.json.gz: file not found"):
        build_dataset(DataConfig(dataset="amazon", amazon_dir=folder, amazon_category="Toys"))
    (folder / "meta_Beauty.json.gz").write_bytes(b"not gzip")
    with pytest.raises(InputError, match=r"meta_Beauty.json.gz: not a readable gzip file"):
        read_meta(folder / "meta_Beauty.json.gz")
