"""Call summary columns: last queue and agent, transfers, IVR intent and confidence.

Revision ID: 0003_call_summary
Revises: 0002_calls
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_call_summary"
down_revision = "0002_calls"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as b:
        b.add_column(sa.Column("queue", sa.String(64)))
        b.add_column(sa.Column("agent", sa.String(64)))
        b.add_column(sa.Column("transfers", sa.Integer, nullable=False, server_default="0"))
        b.add_column(sa.Column("intent", sa.String(64)))
        b.add_column(sa.Column("intent_confidence", sa.Float))
        b.add_column(sa.Column("language", sa.String(16)))
        b.add_column(sa.Column("ivr_via", sa.String(16)))
        b.add_column(sa.Column("transcript_id", sa.Integer))
        b.create_index("ix_calls_queue", ["queue"])
        b.create_index("ix_calls_agent", ["agent"])
        b.create_index("ix_calls_intent", ["intent"])
        b.create_index("ix_calls_started_at", ["started_at"])


def downgrade() -> None:
    with op.batch_alter_table("calls") as b:
        for ix in ("ix_calls_queue", "ix_calls_agent", "ix_calls_intent", "ix_calls_started_at"):
            b.drop_index(ix)
        for col in ("queue", "agent", "transfers", "intent", "intent_confidence", "language",
                    "ivr_via", "transcript_id"):
            b.drop_column(col)
