"""CTI customer history: customers and their numbers, interactions, cases, history audit.

Revision ID: 0102_cti_customers
Revises: 0101_cti_users
"""

import sqlalchemy as sa
from alembic import op

revision = "0102_cti_customers"
down_revision = "0101_cti_users"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("external_id", sa.String(64)),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("segment", sa.String(64)),
        sa.Column("language", sa.String(16)),
        sa.Column("notes", sa.Text),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("external_id", name="uq_customers_external_id"),
    )
    op.create_table(
        "customer_phones",
        sa.Column("e164", sa.String(20), primary_key=True),
        sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id", ondelete="CASCADE"),
                  nullable=False),
    )
    op.create_index("ix_customer_phones_customer_id", "customer_phones", ["customer_id"])
    op.create_table(
        "interactions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("linkedid", sa.String(64), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("customer_id", sa.Integer,
                  sa.ForeignKey("customers.id", ondelete="SET NULL")),
        sa.Column("caller_number", sa.String(64)),
        sa.Column("intent", sa.String(64)),
        sa.Column("queue", sa.String(64)),
        sa.Column("agent", sa.String(64)),
        sa.Column("disposition", sa.String(32)),
        sa.Column("outcome", sa.String(32)),
        sa.Column("notes", sa.Text),
        sa.Column("repeat_contact", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("wrapped_up_at", TS),
        sa.UniqueConstraint("linkedid", name="uq_interactions_linkedid"),
    )
    for col in ("at", "customer_id", "caller_number", "agent"):
        op.create_index(f"ix_interactions_{col}", "interactions", [col])
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("opened_by", sa.String(64)),
        sa.Column("linkedid", sa.String(64)),
        sa.Column("closed_at", TS),
    )
    op.create_index("ix_cases_customer_id", "cases", ["customer_id"])
    op.create_table(
        "history_views",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("customer_id", sa.Integer, nullable=False),
        sa.Column("reason", sa.String(80), nullable=False),
        sa.Column("via", sa.String(16), nullable=False),
    )
    for col in ("at", "username", "customer_id"):
        op.create_index(f"ix_history_views_{col}", "history_views", [col])


def downgrade() -> None:
    op.drop_table("history_views")
    op.drop_table("cases")
    op.drop_table("interactions")
    op.drop_table("customer_phones")
    op.drop_table("customers")
