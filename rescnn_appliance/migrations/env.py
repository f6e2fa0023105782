"""Alembic environment for the music database.

Run programmatically by :func:`rescnn_appliance.music.db.open_engine` (which passes an open
connection in ``config.attributes["connection"]``), or by hand::

    alembic -c migrations/alembic.ini -x db=/var/lib/rescnn-appliance/library.sqlite upgrade head

(``migrations/alembic.ini`` at the top of the checkout names this folder as
``rescnn_appliance:migrations``.)
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from rescnn_appliance.music.db import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    db = context.get_x_argument(as_dictionary=True).get("db")
    return f"sqlite:///{db}" if db else config.get_main_option("sqlalchemy.url")


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, render_as_batch=True,
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(_url())
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
