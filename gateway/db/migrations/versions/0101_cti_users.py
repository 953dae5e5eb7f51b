"""CTI users, the queues agents may serve, and bearer tokens (stored hashed).

Revision ID: 0101_cti_users
Revises: 0001_base
"""

import sqlalchemy as sa
from alembic import op

revision = "0101_cti_users"
down_revision = "0001_base"
branch_labels = ("cti",)
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("team", sa.String(64)),
        sa.Column("endpoint", sa.String(64)),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("password_changed_at", TS, nullable=False),
        sa.UniqueConstraint("username", name="uq_users_username"),
    )
    op.create_index("ix_users_team", "users", ["team"])
    op.create_index("uq_users_endpoint_active", "users", ["endpoint"], unique=True,
                    sqlite_where=sa.text("NOT disabled"), postgresql_where=sa.text("NOT disabled"))
    op.create_table(
        "user_queues",
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("queue", sa.String(64), primary_key=True),
    )
    op.create_table(
        "auth_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("revoked_at", TS),
    )
    op.create_index("ix_auth_tokens_user_id", "auth_tokens", ["user_id"])


def downgrade() -> None:
    op.drop_table("auth_tokens")
    op.drop_table("user_queues")
    op.drop_table("users")
