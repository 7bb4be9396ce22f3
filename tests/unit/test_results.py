"""helpers.results.save_table: the chapters' result files, the same bytes on every
run."""

import gzip
import time

import pandas as pd
import pytest

from helpers import results
from helpers.errors import BookError


@pytest.fixture
def results_base(tmp_path, monkeypatch):
    monkeypatch.setenv(results.RESULTS_ENV, str(tmp_path))
    return tmp_path


def test_gzip_table_has_no_time_stamp_and_reads_back(results_base):
    table = pd.DataFrame({"x": [1.5, 2.0]}, index=pd.Index(["A", "B"], name="gene"))
    first = results.save_table(
        table, "05_embeddings", "e", index=True, gzip=True
    ).read_bytes()
    time.sleep(1.1)  # gzip's header stamps whole seconds
    path = results.save_table(table, "05_embeddings", "e", index=True, gzip=True)
    assert path == results_base / "05_embeddings" / "e.csv.gz"
    assert path.read_bytes() == first
    # RFC 1952: bytes 4-7 of the header are the modification time, 0 = none
    assert first[4:8] == b"\x00\x00\x00\x00"
    assert gzip.decompress(first).decode() == "gene,x\nA,1.5\nB,2.0\n"


def test_plain_table_and_a_wrong_type(results_base):
    path = results.save_table(pd.DataFrame({"a": [1]}), "01_data", "t")
    assert path.read_text() == "a\n1\n"
    with pytest.raises(BookError, match="expects a pandas DataFrame"):
        results.save_table([1, 2], "01_data", "t")
