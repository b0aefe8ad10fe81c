"""Erasure also drops the person's records from the identity feature index (incremental linking)."""

from __future__ import annotations

import pandas as pd

from medscrm.persons.engine import FeatureStore
from medscrm.privacy.service import _forget_in_feature_index
from medscrm.privacy.tables import Subject


def test_erased_records_leave_the_feature_index(tmp_path):
    store = FeatureStore(tmp_path / "index")
    store.write(
        pd.DataFrame({"unique_id": ["sr_gone", "sr_kept"], "phone": ["+8613900000001", "+8613900000002"]}),
        [
            {"type": "phone", "value": "+8613900000001", "records": ["sr_gone", "sr_x"]},
            {"type": "email", "value": "k@x.cn"},
        ],
    )
    sub = Subject(
        tenant_id="t",
        person_id="per_1",
        person_ids=["per_1"],
        record_ids=["sr_gone"],
        identifiers=[("phone", "+8613900000001")],
    )
    assert _forget_in_feature_index(store.path, sub) == 2
    assert list(store.read()["unique_id"]) == ["sr_kept"]
    assert store.shared() == [{"type": "email", "value": "k@x.cn"}]
    assert _forget_in_feature_index(None, sub) == 0
