"""The real GEARS library on the book's split, with GO annotations from the offline
annotation database."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import annotations, data, metrics, splits
from helpers.models.gears import runner as gears_runner
from helpers.pseudobulk import pseudobulk


def test_annotation_database_through_the_registry():
    entry = data.get_entry("org_hs_eg_db")
    assert (
        entry.format == "deb"
        and entry.sha256
        and entry.url.startswith("https://deb.debian.org/")
    )
    go = annotations.gene2go(["CEBPA", "CEBPB", "KLF1", "NOT_A_GENE"])
    assert set(go) == {"CEBPA", "CEBPB", "KLF1"} and all(
        t.startswith("GO:") for t in go["CEBPA"]
    )
    assert (
        len(go["CEBPA"] & go["CEBPB"]) > 5
    )  # related transcription factors share many GO terms
    assert (
        annotations.gene_names(["CEBPA"])["CEBPA"]
        == "CCAAT enhancer binding protein alpha"
    )


def test_deb_member_extraction_rejects_missing_members(tmp_path):
    from tests.conftest import write_registry

    registry = write_registry(
        tmp_path / "reg.toml",
        {
            "deb": {
                "url": "https://example.org/x.deb",
                "filename": data.get_entry("org_hs_eg_db").filename,
                "format": "deb",
                "member": "./does/not/exist",
            },
        },
    )
    data.fetch("org_hs_eg_db", progressbar=False)
    cache = tmp_path / "cache"
    cache.mkdir()
    deb = data.cache_dir() / data.get_entry("org_hs_eg_db").filename
    (cache / deb.name).write_bytes(deb.read_bytes())
    with pytest.raises(data.DataError, match="does not contain"):
        data.fetch("deb", cache=cache, registry=registry, download=False)
    assert not (cache / "deb").exists() or not any((cache / "deb").rglob("*.sqlite"))


def test_gears_trains_and_predicts_on_the_real_subset(norman_subset, tmp_path):
    pb = pseudobulk(norman_subset)
    conditions = list(pb.conditions)
    test = splits.complete_doubles(conditions)[:2]
    split = splits.holdout_split(
        conditions, test, val=["CBL+CNN1"], dataset="norman2019_subset", seed=1
    )
    run = gears_runner.train_gears(
        norman_subset,
        split,
        annotations.gene2go(),
        epochs=1,
        hidden_size=16,
        workdir=tmp_path / "gears",
        seed=0,
    )
    assert run.dropped_conditions == [
        "IER5L"
    ]  # the one target without GO annotation in this database
    assert (
        "Epoch 1" in run.log
        and (tmp_path / "gears" / "data" / "gene2go_all.pkl").exists()
    )
    pred, unpredictable = run.predict(test, seed=0, split_seed=1)
    again, _ = run.predict(test, seed=0, split_seed=1)
    assert unpredictable == [] and np.array_equal(
        pred.values.to_numpy(), again.values.to_numpy()
    )
    table = metrics.evaluate(pred, pb, split, subsets=("test",))
    assert len(table) == 2 and np.isfinite(table["l2"]).all()
    assert (
        gears_runner.to_gears_condition("KLF1") == "KLF1+ctrl"
        and gears_runner.to_gears_condition("ctrl") == "ctrl"
    )
