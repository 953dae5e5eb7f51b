"""Base revision: every domain branch starts here.

Revision ID: 0001_base
Revises:
"""

revision = "0001_base"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
