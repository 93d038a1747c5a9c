"""The first schema: accounts, checks with their items, DVH curves and inputs, append-only sign-offs.

Revision ID: r0001
"""

import sqlalchemy as sa
from alembic import op

revision = "r0001"
down_revision = None
branch_labels = None
depends_on = None

_APPEND_ONLY = ("sign_offs", "sign_off_reasons")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "checks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(64), nullable=False, unique=True),
        sa.Column("plan_uid", sa.String(64), nullable=False, index=True),
        sa.Column("plan_label", sa.String(255), nullable=False),
        sa.Column("patient_id", sa.String(255), nullable=False, index=True),
        sa.Column("patient_name", sa.String(255), nullable=False),
        sa.Column("plan_date", sa.String(8), nullable=False),
        sa.Column("study_date", sa.String(8), nullable=False),
        sa.Column("protocol_id", sa.String(255), nullable=False, index=True),
        sa.Column("protocol_title", sa.Text, nullable=False),
        sa.Column("protocol_sha256", sa.String(64), nullable=False),
        sa.Column("arm", sa.String(255), nullable=False, index=True),
        sa.Column("verdict", sa.String(32), nullable=False, index=True),
        sa.Column("rtcheck_version", sa.String(32), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("document_sha256", sa.String(64), nullable=False),
        sa.Column("report_html", sa.Text, nullable=False),
        sa.Column("curves_stored", sa.Boolean, nullable=False),
    )
    op.create_table(
        "check_items",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("check_id", sa.Integer, sa.ForeignKey("checks.id"), nullable=False, index=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("criterion", sa.String(255), nullable=False, index=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("structure", sa.String(255), nullable=False),
        sa.Column("roi_name", sa.String(255)),
        sa.Column("metric", sa.String(255), nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("unit", sa.String(32), nullable=False),
        sa.Column("per_protocol", sa.Text, nullable=False),
        sa.Column("variation_acceptable", sa.Text),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("required", sa.Boolean, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("biology", sa.Text),
        sa.Column("physical_value", sa.Float),
        sa.Column("marker", sa.Text),
    )
    op.create_table(
        "dvh_curves",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("check_id", sa.Integer, sa.ForeignKey("checks.id"), nullable=False, index=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("structure", sa.String(255), nullable=False),
        sa.Column("roi_name", sa.String(255), nullable=False),
        sa.Column("bin_width_gy", sa.Float, nullable=False),
        sa.Column("first_bin", sa.Integer, nullable=False),
        sa.Column("differential_cc", sa.LargeBinary, nullable=False),
        sa.Column("volume_cc", sa.Float, nullable=False),
        sa.Column("outside_volume_cc", sa.Float, nullable=False),
        sa.Column("min_gy", sa.Float, nullable=False),
        sa.Column("max_gy", sa.Float, nullable=False),
        sa.Column("mean_gy", sa.Float, nullable=False),
    )
    op.create_table(
        "input_files",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("check_id", sa.Integer, sa.ForeignKey("checks.id"), nullable=False, index=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
    )
    op.create_table(
        "sign_offs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("check_id", sa.Integer, sa.ForeignKey("checks.id"), nullable=False, index=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("document_sha256", sa.String(64), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "sign_off_reasons",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sign_off_id", sa.Integer, sa.ForeignKey("sign_offs.id"), nullable=False, index=True),
        sa.Column("check_item_id", sa.Integer, sa.ForeignKey("check_items.id"), nullable=False),
        sa.Column("criterion", sa.String(255), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    _refuse_changes(op.get_bind().dialect.name)


def _refuse_changes(dialect: str) -> None:
    """Sign-offs are an audit trail: the database itself refuses to change or remove one."""
    if dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION rtcheck_append_only() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION 'rtcheck: % is append-only', TG_TABLE_NAME; END; $$ LANGUAGE plpgsql"
        )
        for table in _APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION rtcheck_append_only()"
            )
    elif dialect == "sqlite":
        for table in _APPEND_ONLY:
            for action in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'rtcheck: {table} is append-only'); END"
                )


def downgrade() -> None:
    raise NotImplementedError("the results store is never downgraded: sign-offs are an audit trail")
