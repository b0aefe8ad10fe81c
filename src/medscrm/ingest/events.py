"""Event ingestion behind the HTTP API: spool first, database second.

:mod:`medscrm.ingest.flusher` holds the :class:`Ingestor` (the spool, the flusher thread that moves
spooled records into the database, poison isolation, health figures); :mod:`medscrm.ingest.store`
writes a batch into the database (events de-duplicated by messageId, identify traits as source
records, identity links, quarantine rows). This module re-exports the names the rest of the code
base uses.
"""

from __future__ import annotations

from medscrm.ingest.flusher import Ingestor
from medscrm.ingest.store import (
    DEDUP_WINDOW,
    LINES,
    forget_identity_cache,
    message_record,
    poison_rows,
    quarantine_record,
    refused_rows,
    store_lines,
    store_records,
    tune_for_ingest,
)

__all__ = [
    "DEDUP_WINDOW",
    "LINES",
    "Ingestor",
    "forget_identity_cache",
    "message_record",
    "poison_rows",
    "quarantine_record",
    "refused_rows",
    "store_lines",
    "store_records",
    "tune_for_ingest",
]
