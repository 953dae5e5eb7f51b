"""Call records: calls, legs, timeline events.

Revision ID: 0002_calls
Revises: 0001_base
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_calls"
down_revision = "0001_base"
branch_labels = ("calls",)
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("linkedid", sa.String(64), primary_key=True),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("ended_at", TS),
        sa.Column("caller_number", sa.String(64), index=True),
        sa.Column("caller_name", sa.String(128)),
        sa.Column("dialled", sa.String(64)),
        sa.Column("hangup_cause", sa.Integer),
        sa.Column("hangup_cause_text", sa.String(128)),
    )
    op.create_table(
        "call_legs",
        sa.Column("uniqueid", sa.String(64), primary_key=True),
        sa.Column("linkedid", sa.String(64), sa.ForeignKey("calls.linkedid", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("channel", sa.String(128), nullable=False),
        sa.Column("endpoint", sa.String(64)),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("codec", sa.String(32)),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("answered_at", TS),
        sa.Column("ended_at", TS),
        sa.Column("hangup_cause", sa.Integer),
    )
    op.create_table(
        "call_events",
        sa.Column("linkedid", sa.String(64), sa.ForeignKey("calls.linkedid", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("call_events")
    op.drop_table("call_legs")
    op.drop_table("calls")
