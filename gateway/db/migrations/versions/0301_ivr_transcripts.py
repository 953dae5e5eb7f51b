"""IVR transcripts (masked), one row per IVR visit.

Revision ID: 0301_ivr_transcripts
Revises: 0001_base
"""

import sqlalchemy as sa
from alembic import op

revision = "0301_ivr_transcripts"
down_revision = "0001_base"
branch_labels = ("ivr",)
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ivr_transcripts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("linkedid", sa.String(64), nullable=False),
        sa.Column("channel_id", sa.String(64), nullable=False),
        sa.Column("flow", sa.String(64), nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("transcript", sa.Text, nullable=False),
        sa.Column("intent", sa.String(64)),
        sa.Column("confidence", sa.Float),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("queue", sa.String(64)),
        sa.Column("engine", sa.String(32)),
        sa.Column("latency_ms", sa.Float),
        sa.Column("turns", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_ivr_transcripts_linkedid", "ivr_transcripts", ["linkedid"])
    op.create_index("ix_ivr_transcripts_created_at", "ivr_transcripts", ["created_at"])


def downgrade() -> None:
    op.drop_table("ivr_transcripts")
