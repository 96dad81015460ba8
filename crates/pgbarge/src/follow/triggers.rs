//! The target's triggers while following, as native logical replication fires them:
//! ordinary triggers not (the rows were written on the source, where they already fired),
//! `ENABLE REPLICA` and `ENABLE ALWAYS` ones yes. The server does this for a session
//! whose `session_replication_role` is `replica`, which a superuser may set (and, from
//! PostgreSQL 15, a role it was granted to). A role that may not is told before anything
//! is applied, and chooses: let the ordinary triggers fire (`--fire-triggers`), or have
//! the setting granted, or disable those triggers until the cut-over.

use tokio_postgres::types::Type;
use tokio_postgres::Client;

use crate::catalog::TableName;
use crate::error::{Error, Kind, Result, Side, SqlState};

/// Makes the session apply as native replication does, when the role may.
const REPLICA: &str = "SET session_replication_role = replica";

/// The ordinary (`tgenabled = 'O'`) and replica-only (`'R'`) user triggers of `$1`'s
/// tables: (table, trigger, enabled).
const TRIGGERS: &str = "SELECT t.name, g.tgname::text, g.tgenabled::text \
    FROM pg_catalog.unnest($1::text[]) AS t(name) \
    JOIN pg_catalog.pg_trigger g ON g.tgrelid = pg_catalog.to_regclass(t.name) \
    WHERE NOT g.tgisinternal AND g.tgenabled IN ('O', 'R') ORDER BY 1, 2";

/// How applied changes would fire the target's triggers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Firing {
    /// The session applies as a replica: exactly as native replication.
    pub replica: bool,
    /// Without it: ordinary triggers that would fire on every applied change, and
    /// `ENABLE REPLICA` ones that would not (`table: trigger`).
    pub ordinary: Vec<String>,
    pub replica_only: Vec<String>,
}

impl Firing {
    /// Nothing fires otherwise than under native replication.
    pub fn as_native(&self) -> bool {
        self.replica || (self.ordinary.is_empty() && self.replica_only.is_empty())
    }

    /// The preflight refusal, with the choices.
    pub fn refusal(&self) -> Error {
        let mut what = Vec::new();
        if !self.ordinary.is_empty() {
            what.push(format!(
                "its ordinary triggers would fire on every change applied (native \
                 replication does not fire them: they fired on the source already): {}",
                self.ordinary.join(", ")
            ));
        }
        if !self.replica_only.is_empty() {
            what.push(format!(
                "its ENABLE REPLICA triggers would not fire: {}",
                self.replica_only.join(", ")
            ));
        }
        Error::new(
            Kind::Preflight,
            format!(
                "following cannot apply changes to the target as native replication does: \
                 the role may not set session_replication_role, so {}. Nothing was \
                 applied. Choose one: have it granted (a superuser, or from PostgreSQL 15 \
                 `GRANT SET ON PARAMETER session_replication_role TO <role>`); or accept \
                 that they fire with --fire-triggers; or disable those triggers on the \
                 target until the cut-over (ALTER TABLE … DISABLE TRIGGER …).",
                what.join("; and ")
            ),
        )
        .on(Side::Target)
    }
}

impl Firing {
    /// Both lists of `other` added to this one's (a trigger named in both, once).
    pub fn merge(mut self, other: Firing) -> Firing {
        for t in other.ordinary {
            if !self.ordinary.contains(&t) {
                self.ordinary.push(t);
            }
        }
        for t in other.replica_only {
            if !self.replica_only.contains(&t) {
                self.replica_only.push(t);
            }
        }
        self
    }
}

/// Sets `target`'s session to apply as a replica if the role may; `Ok(false)` if not.
pub async fn apply_as_replica(target: &Client) -> Result<bool> {
    match target.batch_execute(REPLICA).await {
        Ok(()) => Ok(true),
        Err(e) if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) => Ok(false),
        Err(e) => Err(Error::postgres(
            Kind::Copy,
            Side::Target,
            "setting session_replication_role",
            e,
        )),
    }
}

/// Whether the role may apply as a replica, asked in a transaction that is rolled back
/// (the session is left as it was).
pub async fn may_apply_as_replica(target: &Client) -> Result<bool> {
    let asked = target
        .batch_execute(&format!("BEGIN; {REPLICA}"))
        .await
        .map(|()| true);
    let _ = target.batch_execute("ROLLBACK").await;
    match asked {
        Ok(yes) => Ok(yes),
        Err(e) if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) => Ok(false),
        Err(e) => Err(Error::postgres(
            Kind::Copy,
            Side::Target,
            "checking session_replication_role",
            e,
        )),
    }
}

/// The triggers of `tables` on `client` that replica apply would treat otherwise.
pub async fn differing(client: &Client, side: Side, tables: &[TableName]) -> Result<Firing> {
    let names: Vec<String> = tables.iter().map(TableName::sql).collect();
    let rows = client
        .query_typed(TRIGGERS, &[(&names, Type::TEXT_ARRAY)])
        .await
        .map_err(|e| Error::postgres(Kind::Catalog, side, "reading the triggers", e))?;
    let mut firing = Firing::default();
    for row in rows {
        let table = tables
            .iter()
            .find(|t| t.sql() == row.get::<_, String>(0))
            .map(ToString::to_string)
            .unwrap_or_default();
        let trigger = format!(
            "{table}: {}",
            crate::quote::printable(row.get::<_, &str>(1))
        );
        match row.get::<_, String>(2).as_str() {
            "O" => firing.ordinary.push(trigger),
            _ => firing.replica_only.push(trigger),
        }
    }
    Ok(firing)
}
