//! Questions asked of the target about a unit's session, on the side: whether it is
//! still working (a stream that went quiet may be an index build, or a dead link), and
//! who holds the locks it waits for (for the message while pgbarge waits).

use tokio_postgres::Client;

use crate::catalog::TableName;
use crate::connect::{connect, Backend};
use crate::conninfo::ConnInfo;
use crate::error::Side;
use crate::plan::units::{Unit, Work};

use super::pump;
use super::stage::copied_tables;

/// Who holds a lock on the tables a unit works on (for the message while pgbarge waits).
/// Query text is visible for the role's own sessions or with pg_read_all_stats.
const LOCK_HOLDERS: &str = "SELECT a.pid, coalesce(a.application_name, ''), \
     coalesce(a.state, ''), coalesce(a.xact_start::text, ''), \
     coalesce(split_part(a.query, E'\\n', 1), '') \
     FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid \
     JOIN pg_catalog.pg_class c ON c.oid = l.relation \
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
     WHERE l.granted AND a.pid <> pg_catalog.pg_backend_pid() \
       AND (n.nspname, c.relname) IN \
         (SELECT s, r FROM ROWS FROM (pg_catalog.unnest($1::text[]), \
                                      pg_catalog.unnest($2::text[])) AS t(s, r)) \
     GROUP BY 1, 2, 3, 4, 5 ORDER BY 1 LIMIT 5";

/// Whether a session is working on a statement (not waiting for its client to send
/// more, which is what a session whose data was lost in transit does).
const SESSION_BUSY: &str = "SELECT state = 'active' AND wait_event IS DISTINCT FROM 'ClientRead' \
     FROM pg_catalog.pg_stat_activity WHERE pid = $1 AND backend_start::text = $2";

/// Whether the target session `backend` is working on a statement, asked on a new
/// connection. A target that cannot be reached, or a session gone, is not busy.
pub(super) fn busy<'b>(target: &'b ConnInfo, backend: &'b Backend) -> pump::Busy<'b> {
    Box::pin(async move {
        let Ok(probe) = connect(target, Side::Target).await else {
            return false;
        };
        probe
            .client
            .query_opt(SESSION_BUSY, &[&backend.pid, &backend.started])
            .await
            .ok()
            .flatten()
            .and_then(|r| r.get::<_, Option<bool>>(0))
            .unwrap_or(false)
    })
}

/// Who holds locks on the tables `unit` works on, as one line for the user (empty when
/// nobody does, or the target cannot say).
pub(super) async fn lock_holders(work: &Work, unit: &Unit, target: &Client) -> String {
    let names: Vec<&TableName> = unit
        .completes
        .iter()
        .copied()
        .chain(copied_tables(unit))
        .map(|i| &work.tables[i].target)
        .collect();
    let schemas: Vec<&str> = names.iter().map(|t| t.schema.as_str()).collect();
    let tables: Vec<&str> = names.iter().map(|t| t.name.as_str()).collect();
    let Ok(rows) = target.query(LOCK_HOLDERS, &[&schemas, &tables]).await else {
        return String::new();
    };
    rows.iter()
        .map(|r| Holder {
            pid: r.get(0),
            application: r.get(1),
            state: r.get(2),
            since: r.get(3),
            query: r.get(4),
        })
        .map(|h| h.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

/// A session holding a lock, as [`LOCK_HOLDERS`] reads it.
struct Holder {
    pid: i32,
    application: String,
    state: String,
    /// When its transaction started.
    since: String,
    /// The first line of its query.
    query: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let application = match self.application.as_str() {
            "" => "no application_name".to_string(),
            a => format!("application_name {a}"),
        };
        write!(
            f,
            "pid {} ({application}, {}, in a transaction since {}): {}",
            self.pid, self.state, self.since, self.query
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_holder_reads_as_one_clause() {
        let mut h = Holder {
            pid: 42,
            application: "psql".into(),
            state: "idle in transaction".into(),
            since: "2024-01-01 10:00:00+00".into(),
            query: "LOCK t".into(),
        };
        assert_eq!(
            h.to_string(),
            "pid 42 (application_name psql, idle in transaction, in a transaction since \
             2024-01-01 10:00:00+00): LOCK t"
        );
        h.application.clear();
        assert!(
            h.to_string().starts_with("pid 42 (no application_name, "),
            "{h}"
        );
    }
}
