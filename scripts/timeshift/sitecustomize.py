"""Loaded by ``scripts/test_shifted.sh`` (PYTHONPATH): every Python process of the test run — pytest and
the servers and CLIs it starts — sees a wall clock ``MEDSCRM_TEST_SHIFT_DAYS`` days ahead (ticking), so
a test that mixes a fixed date with the real clock fails today instead of in a later CI run."""

import os

if os.environ.get("MEDSCRM_TEST_SHIFT_DAYS"):
    import datetime as _dt

    import time_machine as _tm

    _days = float(os.environ["MEDSCRM_TEST_SHIFT_DAYS"])
    _tm.travel(_dt.datetime.now(_dt.UTC) + _dt.timedelta(days=_days), tick=True).start()
