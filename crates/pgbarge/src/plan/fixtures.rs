//! Plans built by hand for unit tests of the stages that read them.

use super::*;
use crate::catalog::{Column, ColumnType, Snapshot, TableDetail, TableKind, TableName};

pub fn endpoint() -> Endpoint {
    Endpoint {
        connection: "app@db:5432/app".into(),
        database: "app".into(),
        host: "db".into(),
        server_version: 160000,
    }
}

pub fn table(name: &str, action: Action, parts: usize) -> TablePlan {
    TablePlan {
        format: CopyFormat::Binary,
        estimated_bytes: 1000 * (parts.max(1) as i64),
        data_bytes: 800 * (parts.max(1) as i64),
        parts: (0..parts)
            .map(|i| Part {
                index: i,
                first_block: i as i64 * 10,
                end_block: (i + 1 < parts).then_some((i as i64 + 1) * 10),
            })
            .collect(),
        staging: (parts > 0).then(|| TableName::new("public", format!("_pgbarge_1_{name}"))),
        ..TablePlan::new(TableName::new("public", name), action, TableKind::Regular)
    }
}

pub fn plan(tables: Vec<TablePlan>) -> Plan {
    Plan {
        source: endpoint(),
        target: endpoint(),
        content: Content::SchemaAndData,
        jobs: 2,
        prepare: Vec::new(),
        types: Vec::new(),
        schema: SchemaPlan {
            after: vec![Step {
                what: "foreign key orders_fk".into(),
                sql: "ALTER TABLE \"public\".\"orders\" ADD CONSTRAINT …".into(),
                needs: vec![TableName::new("public", "orders")],
            }],
            ..SchemaPlan::default()
        },
        owner: None,
        whole_schemas: Vec::new(),
        exclude_objects: Vec::new(),
        since: None,
        without_fks: false,
        grants: false,
        linked_groups: Vec::new(),
        linked_group_keys: Vec::new(),
        replace_groups: Vec::new(),
        warnings: Vec::new(),
        tables,
    }
}

/// A built-in column type with binary I/O: `sql` as `format_type` prints it, `name` as
/// `pg_type.typname`.
pub fn ty(sql: &str, name: &str) -> ColumnType {
    ColumnType {
        oid: 0,
        sql: sql.into(),
        schema: "pg_catalog".into(),
        name: name.into(),
        typmod: -1,
        typtype: 'b',
        category: match name {
            "int2" | "int4" | "int8" | "numeric" => 'N',
            _ => 'S',
        },
        binary_io: true,
    }
}

/// A plain nullable column without default.
pub fn column(name: &str, ty: ColumnType) -> Column {
    Column {
        name: name.into(),
        ty,
        not_null: false,
        default: None,
        generated: false,
        identity: None,
        collation: None,
        inherited: false,
        row_type_of: None,
        sequence: None,
        leftover_sequences: Vec::new(),
    }
}

/// Regular table `public.name` with `columns`, every privilege, owned by the role.
pub fn detail(name: &str, columns: Vec<Column>) -> TableDetail {
    TableDetail {
        table: crate::catalog::Table {
            oid: 16384,
            name: TableName::new("public", name),
            kind: TableKind::Regular,
            estimated_rows: Some(10),
            total_bytes: 8192,
            data_bytes: 8192,
            pages: 1,
            is_partition: false,
            can_select: true,
            can_insert: true,
            can_truncate: true,
            can_update: true,
            can_delete: true,
            is_owner: true,
            unlogged: false,
            options: Vec::new(),
            of_type: None,
            row_security_applies: false,
        },
        columns,
        primary_key: None,
        inherits: Vec::new(),
        others: Default::default(),
    }
}

/// `detail` with primary key `(columns)`.
pub fn keyed(mut table: TableDetail, columns: &[&str]) -> TableDetail {
    table.primary_key = Some(crate::catalog::PrimaryKey {
        name: format!("{}_pkey", table.table.name.name),
        columns: columns.iter().map(|c| c.to_string()).collect(),
        definition: format!("PRIMARY KEY ({})", columns.join(", ")),
    });
    table
}

/// Both servers as a snapshot: `source` tables chosen from, `target` tables (empty unless
/// named in `non_empty`); the role may create in schema `public` on the target.
pub fn snapshot(
    source: Vec<TableDetail>,
    target: Vec<TableDetail>,
    non_empty: &[&str],
) -> Snapshot {
    let mut s = Snapshot {
        source_encoding: "UTF8".into(),
        target_encoding: "UTF8".into(),
        ..Snapshot::default()
    };
    s.target_privileges
        .create_in_schema
        .insert("public".into(), true);
    for t in source {
        s.source.tables.insert(t.table.name.clone(), t);
    }
    for t in target {
        s.target_tables
            .insert(t.table.name.clone(), t.table.clone());
        s.target.tables.insert(t.table.name.clone(), t);
    }
    s.target_non_empty = non_empty
        .iter()
        .map(|n| TableName::new("public", *n))
        .collect();
    s
}

/// The plan of public tables `chosen` from `snapshot`.
pub fn build(chosen: &[&str], snapshot: &Snapshot, options: &PlanOptions) -> Plan {
    let chosen: Vec<TableName> = chosen
        .iter()
        .map(|n| TableName::new("public", *n))
        .collect();
    Plan::build(endpoint(), endpoint(), &chosen, snapshot, options)
}
