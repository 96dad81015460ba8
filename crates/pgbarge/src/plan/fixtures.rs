//! Plans built by hand for unit tests of the stages that read them.

use super::*;
use crate::catalog::TableKind;

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
