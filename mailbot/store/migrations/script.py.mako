"""${message}

Revision ID: ${up_revision} (${"after " + str(down_revision) if down_revision else "the first migration"})
Create Date: ${create_date}
"""

import sqlalchemy as sa
from alembic import op

from mailbot.store.migrations import sequences  # noqa: F401  (op.create_sequence)
${imports if imports else ""}

# Revision identifiers, used by Alembic.
revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
