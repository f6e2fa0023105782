"""Tracks get a genre (from the ID3 TCON, Vorbis GENRE or MP4 ©gen tag), for genre taste.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

Both directions alter the table in place (SQLite 3.35+ drops a column natively). Rebuilding
``tracks`` the batch way would drop the old table, and with foreign keys on that deletes every
listener's feedback and plays by cascade.
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tracks", sa.Column("genre", sa.Text))


def downgrade() -> None:
    op.drop_column("tracks", "genre")
