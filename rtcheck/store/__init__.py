"""The results store: every check rtcheck makes, kept in a database for the review dashboard.

SQLite (a file) by default, PostgreSQL by URL; the schema is made and migrated by the
Alembic migrations shipped in ``rtcheck/store/migrations`` on every :func:`open_store`.

>>> store = open_store("rtcheck.sqlite")                         # doctest: +SKIP
>>> record_check(store, build_record(result), Origin.CHECK)       # doctest: +SKIP
"""

from rtcheck.store.database import ResultStore, database_url, open_store
from rtcheck.store.ingest import ImportCounts, Origin, Recorded, import_reports, record_check, report_documents
from rtcheck.store.models import Decision, Role
from rtcheck.store.record import CheckRecord, build_record, record_from_document

__all__ = [
    "CheckRecord", "Decision", "ImportCounts", "Origin", "Recorded", "ResultStore", "Role", "build_record", "database_url",
    "import_reports", "open_store", "record_check", "record_from_document", "report_documents",
]
