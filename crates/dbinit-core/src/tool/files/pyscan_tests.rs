//! Unit tests of [`super::pyscan`].

use super::pyscan::*;

const ALEMBIC_1_20: &str = r#""""add email

Revision ID: 7d3da24584eb
Revises: 98718bda1102
Create Date: 2026-12-05 11:49:07.335627

revision = 'not-this-one'
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '7d3da24584eb'
down_revision: Union[str, Sequence[str], None] = '98718bda1102'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    revision = "inside a function"
    op.add_column("users", sa.Column("email", sa.Text()))
"#;

#[test]
fn typed_alembic_assignments_at_module_level() {
    assert_eq!(
        module_value(ALEMBIC_1_20, "revision"),
        Some(PyValue::Str("7d3da24584eb".into()))
    );
    assert_eq!(
        module_value(ALEMBIC_1_20, "down_revision"),
        Some(PyValue::Str("98718bda1102".into()))
    );
    assert_eq!(
        module_value(ALEMBIC_1_20, "branch_labels"),
        Some(PyValue::None)
    );
}

#[test]
fn merges_lists_and_old_style_files() {
    let merge = "revision = \"cc01\"\ndown_revision = ('aaaa0001',\n    'bbbb0001')  # merge\n";
    assert_eq!(
        module_value(merge, "down_revision")
            .expect("set")
            .strings()
            .expect("strs"),
        ["aaaa0001", "bbbb0001"]
    );
    let list = "down_revision: Union[str, Sequence[str], None] = [\n  \"a\",\n  \"b\",\n]\n";
    assert_eq!(
        module_value(list, "down_revision")
            .expect("set")
            .strings()
            .expect("strs"),
        ["a", "b"]
    );
    assert_eq!(
        module_value("down_revision = None\n", "down_revision"),
        Some(PyValue::None)
    );
    assert_eq!(
        parse_value("('x',)"),
        PyValue::Seq(vec![PyValue::Str("x".into())])
    );
    assert_eq!(parse_value("(\"x\")"), PyValue::Str("x".into()));
    assert!(matches!(parse_value("REV_ID"), PyValue::Other(_)));
    assert!(matches!(parse_value("'a' + b"), PyValue::Other(_)));
}

#[test]
fn django_migration_class_attributes() {
    let m = r#"from django.db import migrations

class Migration(migrations.Migration):

    replaces = [("shop", "0001_initial"), ('shop', '0002_add_price')]

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("contenttypes", "__first__"),
    ]
    operations = []
"#;
    let a = assignments(m);
    let replaces = a.iter().find(|a| a.name == "replaces").expect("replaces");
    assert_eq!(replaces.indent, 4);
    assert_eq!(
        replaces.parse(),
        PyValue::Seq(vec![
            PyValue::Seq(vec![
                PyValue::Str("shop".into()),
                PyValue::Str("0001_initial".into())
            ]),
            PyValue::Seq(vec![
                PyValue::Str("shop".into()),
                PyValue::Str("0002_add_price".into())
            ]),
        ])
    );
    let deps = a
        .iter()
        .find(|a| a.name == "dependencies")
        .expect("deps")
        .parse();
    let PyValue::Seq(items) = deps else {
        panic!("{deps:?}")
    };
    assert!(
        matches!(&items[0], PyValue::Other(t) if t.starts_with("migrations.swappable_dependency"))
    );
    assert_eq!(items.len(), 2);
}

#[test]
fn not_assignments() {
    assert!(assignments("x == 1\ny += [2]\na, b = 1, 2\n").is_empty());
}
