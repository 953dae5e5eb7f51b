"""Voice quality per leg and handle time / review per call.

Revision ID: 0201_quality_base
Revises: 0001_base
"""

import sqlalchemy as sa
from alembic import op

revision = "0201_quality_base"
down_revision = "0001_base"
branch_labels = ("quality",)
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "quality_legs",
        sa.Column("uniqueid", sa.String(64), primary_key=True),
        sa.Column("source", sa.String(32), primary_key=True),
        sa.Column("linkedid", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(128), nullable=False),
        sa.Column("endpoint", sa.String(64)),
        sa.Column("codec", sa.String(32)),
        sa.Column("reports", sa.Integer, nullable=False, server_default="0"),
        sa.Column("packets_in", sa.Integer),
        sa.Column("lost_in", sa.Integer),
        sa.Column("loss_pct_in", sa.Float),
        sa.Column("packets_out", sa.Integer),
        sa.Column("lost_out", sa.Integer),
        sa.Column("loss_pct_out", sa.Float),
        sa.Column("jitter_ms_min", sa.Float),
        sa.Column("jitter_ms_avg", sa.Float),
        sa.Column("jitter_ms_max", sa.Float),
        sa.Column("loss_pct_min", sa.Float),
        sa.Column("loss_pct_avg", sa.Float),
        sa.Column("loss_pct_max", sa.Float),
        sa.Column("rtt_ms_min", sa.Float),
        sa.Column("rtt_ms_avg", sa.Float),
        sa.Column("rtt_ms_max", sa.Float),
        sa.Column("burst_ratio", sa.Float),
        sa.Column("delay_ms", sa.Float),
        sa.Column("r_in", sa.Float),
        sa.Column("r_out", sa.Float),
        sa.Column("r_factor", sa.Float),
        sa.Column("mos", sa.Float),
        sa.Column("worst_direction", sa.String(8)),
        sa.Column("asterisk_mes", sa.Float),
        sa.Column("measured_at", TS, nullable=False),
    )
    op.create_index("ix_quality_legs_linkedid", "quality_legs", ["linkedid"])
    op.create_table(
        "call_metrics",
        sa.Column("linkedid", sa.String(64), primary_key=True),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("ended_at", TS),
        sa.Column("caller_number", sa.String(64)),
        sa.Column("queue", sa.String(64)),
        sa.Column("intent", sa.String(64)),
        sa.Column("topic", sa.String(64)),
        sa.Column("agent", sa.String(64)),
        sa.Column("agent_endpoint", sa.String(64)),
        sa.Column("agent_username", sa.String(64)),
        sa.Column("team", sa.String(64)),
        sa.Column("queued", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("answered", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("abandoned", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("ivr_s", sa.Float, nullable=False, server_default="0"),
        sa.Column("queue_wait_s", sa.Float, nullable=False, server_default="0"),
        sa.Column("ring_s", sa.Float, nullable=False, server_default="0"),
        sa.Column("talk_s", sa.Float, nullable=False, server_default="0"),
        sa.Column("hold_s", sa.Float, nullable=False, server_default="0"),
        sa.Column("hold_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("transfers", sa.Integer, nullable=False, server_default="0"),
        sa.Column("acw_started_at", TS),
        sa.Column("acw_ended_at", TS),
        sa.Column("acw_s", sa.Float),
        sa.Column("acw_capped", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("aht_s", sa.Float),
        sa.Column("service_level_s", sa.Float),
        sa.Column("answered_within_sl", sa.Boolean),
        sa.Column("repeat_contact", sa.Boolean),
        sa.Column("repeat_source", sa.String(8)),
        sa.Column("worst_uniqueid", sa.String(64)),
        sa.Column("quality_legs", sa.Integer, nullable=False, server_default="0"),
        sa.Column("mos_min", sa.Float),
        sa.Column("r_min", sa.Float),
        sa.Column("loss_pct_max", sa.Float),
        sa.Column("jitter_ms_max", sa.Float),
        sa.Column("rtt_ms_max", sa.Float),
        sa.Column("review", sa.JSON, nullable=False),
        sa.Column("flagged", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_call_metrics_started_at", "call_metrics", ["started_at"])
    op.create_index("ix_call_metrics_caller_number", "call_metrics", ["caller_number"])
    op.create_index("ix_call_metrics_queue", "call_metrics", ["queue"])
    op.create_index("ix_call_metrics_intent", "call_metrics", ["intent"])
    op.create_index("ix_call_metrics_agent_username", "call_metrics", ["agent_username"])
    op.create_index("ix_call_metrics_team", "call_metrics", ["team"])
    op.create_index("ix_call_metrics_flagged", "call_metrics", ["flagged"])


def downgrade() -> None:
    op.drop_table("call_metrics")
    op.drop_table("quality_legs")
