"""Opening the results store: a database URL (or a file path for SQLite), migrated on open.

The migrations (Alembic) ship inside the package and run on every open, so a
store made by an older rtcheck is brought up to date; nothing else creates tables.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from rtcheck.errors import StoreError

__all__ = ["ResultStore", "database_url", "open_store"]

_MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def database_url(given: str) -> str:
    """The SQLAlchemy URL of ``--db``: a URL as given (``postgresql://`` uses psycopg 3), else a SQLite file path."""
    if "://" not in given:
        return "sqlite:///" + os.path.abspath(given)
    scheme, rest = given.split("://", 1)
    if scheme in ("postgresql", "postgres"):
        return "postgresql+psycopg://" + rest
    return given


def shown_url(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


class ResultStore:
    """A migrated database and its sessions; see :mod:`rtcheck.store` for what it holds."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed when the block ends normally, rolled back otherwise."""
        with self._sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    # The listener writes while `serve` reads: write-ahead logging lets both go on.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def open_store(given: str) -> ResultStore:
    """Open (creating it if need be) and migrate the store at ``given`` (URL or SQLite file path).

    StoreError, with the URL shown without password, when the database cannot be reached or migrated.
    """
    url = database_url(given)
    try:
        engine = create_engine(url)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise StoreError(f"--db {shown_url(url) if '://' in url else given}: cannot use this database ({exc})") from None
    if engine.dialect.name == "sqlite":
        folder = os.path.dirname(engine.url.database or "")
        if folder and not os.path.isdir(folder):
            raise StoreError(f"--db {given}: the folder {folder} does not exist")
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        upgrade(engine)
    except SQLAlchemyError as exc:
        engine.dispose()
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise StoreError(f"--db {shown_url(url)}: cannot open or migrate the database ({reason})") from None
    return ResultStore(engine)


def upgrade(engine: Engine) -> None:
    """Run the shipped migrations up to the newest."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
