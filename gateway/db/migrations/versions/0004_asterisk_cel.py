"""Asterisk's CEL table for cel_pgsql (PostgreSQL only): the trail the gateway reconciles from.

In production Asterisk writes Channel Event Logging into this table of the gateway's database
(cel_pgsql reads the columns at load, so the table must exist first). The embedded SQLite
set-up has Asterisk write its own file instead, so nothing is created there.

Revision ID: 0004_asterisk_cel
Revises: 0003_call_summary
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_asterisk_cel"
down_revision = "0003_call_summary"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_table(
        "asterisk_cel",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("eventtype", sa.String(30), nullable=False),
        sa.Column("eventtime", sa.DateTime, nullable=False),
        sa.Column("userdeftype", sa.String(255), nullable=False, server_default=""),
        sa.Column("cid_name", sa.String(80), nullable=False, server_default=""),
        sa.Column("cid_num", sa.String(80), nullable=False, server_default=""),
        sa.Column("cid_ani", sa.String(80), nullable=False, server_default=""),
        sa.Column("cid_rdnis", sa.String(80), nullable=False, server_default=""),
        sa.Column("cid_dnid", sa.String(80), nullable=False, server_default=""),
        sa.Column("exten", sa.String(80), nullable=False, server_default=""),
        sa.Column("context", sa.String(80), nullable=False, server_default=""),
        sa.Column("channame", sa.String(80), nullable=False, server_default=""),
        sa.Column("appname", sa.String(80), nullable=False, server_default=""),
        sa.Column("appdata", sa.String(512), nullable=False, server_default=""),
        sa.Column("amaflags", sa.Integer, nullable=False, server_default="0"),
        sa.Column("accountcode", sa.String(20), nullable=False, server_default=""),
        sa.Column("peeraccount", sa.String(20), nullable=False, server_default=""),
        sa.Column("uniqueid", sa.String(150), nullable=False, server_default=""),
        sa.Column("linkedid", sa.String(150), nullable=False, server_default=""),
        sa.Column("userfield", sa.String(255), nullable=False, server_default=""),
        sa.Column("peer", sa.String(80), nullable=False, server_default=""),
        sa.Column("extra", sa.Text, nullable=False, server_default=""),
    )
    op.create_index("ix_asterisk_cel_linkedid", "asterisk_cel", ["linkedid"])
    op.create_index("ix_asterisk_cel_eventtype_time", "asterisk_cel", ["eventtype", "eventtime"])


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_table("asterisk_cel")
