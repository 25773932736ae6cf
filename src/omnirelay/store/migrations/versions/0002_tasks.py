"""Durable tasks, and a webhook signing secret per account.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("webhook_secret", sa.String(64), nullable=False, server_default=""))
    accounts = sa.table("accounts", sa.column("id", sa.Integer), sa.column("webhook_secret", sa.String))
    bind = op.get_bind()
    for (account_id,) in bind.execute(sa.select(accounts.c.id)).fetchall():
        bind.execute(
            accounts.update().where(accounts.c.id == account_id).values(webhook_secret=secrets.token_hex(32))
        )
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("account_id", sa.Integer, nullable=False),
        sa.Column("key_id", sa.Integer, nullable=False),
        sa.Column("family", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("request", sa.Text, nullable=False),
        sa.Column("upstream_task_id", sa.String(200), nullable=True),
        sa.Column("upstream_state", sa.Text, nullable=True),
        sa.Column("result", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("progress", sa.String(16), nullable=True),
        sa.Column("polls", sa.Integer, nullable=False),
        sa.Column("hold", sa.BigInteger, nullable=False),
        sa.Column("cost", sa.BigInteger, nullable=False),
        sa.Column("settled", sa.Boolean, nullable=False),
        sa.Column("request_id", sa.String(40), nullable=False),
        sa.Column("webhook_url", sa.Text, nullable=True),
        sa.Column("webhook_status", sa.String(16), nullable=True),
        sa.Column("webhook_attempts", sa.Integer, nullable=False),
        sa.Column("webhook_next_at", sa.Float, nullable=True),
        sa.Column("webhook_last_error", sa.Text, nullable=True),
        sa.Column("next_poll_at", sa.Float, nullable=False),
        sa.Column("deadline_at", sa.Float, nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.Float, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("completed_at", sa.Float, nullable=True),
    )
    op.create_index("ix_tasks_due", "tasks", ["status", "next_poll_at"])
    op.create_index("ix_tasks_webhook_due", "tasks", ["webhook_status", "webhook_next_at"])
    op.create_index("ix_tasks_account", "tasks", ["account_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_tasks_account", table_name="tasks")
    op.drop_index("ix_tasks_webhook_due", table_name="tasks")
    op.drop_index("ix_tasks_due", table_name="tasks")
    op.drop_table("tasks")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("webhook_secret")
