"""Music library: users, tracks, feedback, plays, mood models, imported VA, app state.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "tracks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("path", sa.Text, nullable=False, unique=True),
        sa.Column("title", sa.Text),
        sa.Column("artist", sa.Text),
        sa.Column("album", sa.Text),
        sa.Column("duration_s", sa.Float),
        sa.Column("valence", sa.Float),
        sa.Column("arousal", sa.Float),
        sa.Column("va_source", sa.String(8)),
        sa.Column("mood", sa.String(16)),
        sa.Column("size", sa.Integer),
        sa.Column("mtime", sa.Float),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("scanned_at", sa.DateTime),
    )
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("track_id", sa.Integer, sa.ForeignKey("tracks.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("valence", sa.Float),
        sa.Column("arousal", sa.Float),
        sa.Column("mood", sa.String(16)),
    )
    op.create_index("ix_feedback_user", "feedback", ["user_id"])
    op.create_index("ix_feedback_track", "feedback", ["track_id"])
    op.create_table(
        "plays",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE")),
        sa.Column("track_id", sa.Integer, sa.ForeignKey("tracks.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("ended_how", sa.String(16)),
    )
    op.create_index("ix_plays_user", "plays", ["user_id"])
    op.create_table(
        "mood_models",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("fitted_at", sa.DateTime, nullable=False),
        sa.Column("n_tracks", sa.Integer, nullable=False),
        sa.Column("centroids_json", sa.Text, nullable=False),
    )
    op.create_table(
        "imported_va",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("path", sa.Text),
        sa.Column("artist_key", sa.Text),
        sa.Column("title_key", sa.Text),
        sa.Column("valence", sa.Float, nullable=False),
        sa.Column("arousal", sa.Float, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
    )
    op.create_index("ix_imported_va_path", "imported_va", ["path"])
    op.create_index("ix_imported_va_artist_title", "imported_va", ["artist_key", "title_key"])
    op.create_table(
        "app_state",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in ("app_state", "imported_va", "mood_models", "plays", "feedback", "tracks",
                  "users"):
        op.drop_table(table)
