//! The library's one error type.
//!
//! Every error carries a [`Kind`] (what went wrong, which decides the CLI's exit code), the
//! [`Side`] it happened on when there is one, and whether retrying could help. The message is
//! written for the user: it says what failed and, where we know, what to do next. Passwords
//! never appear in it (connection strings are only ever shown through
//! [`crate::conninfo::ConnInfo`]'s redacting `Display`).

use std::fmt;

pub use tokio_postgres::error::SqlState;

/// Which server an operation talked to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Source,
    Target,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Source => "source",
            Side::Target => "target",
        })
    }
}

/// What kind of failure this is. The CLI maps each kind to a documented exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The user's input cannot be used as given (bad connection string, bad pattern, …).
    Usage,
    /// A server could not be reached, refused the login, or failed the TLS check.
    Connect,
    /// Preflight found problems; nothing was written.
    Preflight,
    /// Moving data failed; the table being loaded was rolled back.
    Copy,
    /// The run was interrupted (Ctrl-C); the table being loaded was rolled back.
    Interrupted,
    /// A server answered a catalog query unexpectedly.
    Catalog,
    /// Verification found tables that differ between source and target.
    Verify,
    /// Every table is loaded, but creating the objects that follow the data (foreign
    /// keys, views, triggers, …) failed and was rolled back.
    Schema,
}

/// A pgbarge error: kind, side, transience and a user-facing message.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: Kind,
    side: Option<Side>,
    transient: bool,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    /// A new error of `kind` with a user-facing `message`.
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error {
            kind,
            side: None,
            transient: false,
            message: message.into(),
            source: None,
        }
    }

    /// Shorthand for a [`Kind::Usage`] error.
    pub fn usage(message: impl Into<String>) -> Self {
        Error::new(Kind::Usage, message)
    }

    /// Tags the error with the server it happened on.
    pub fn on(mut self, side: Side) -> Self {
        self.side = Some(side);
        self
    }

    /// Marks the error as one a retry could fix (network drop, server restart, …).
    pub fn transient(mut self, transient: bool) -> Self {
        self.transient = transient;
        self
    }

    /// Attaches the underlying cause.
    pub fn caused_by(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Wraps a server error from an operation on `side`; `doing` says what we were doing,
    /// e.g. `loading "public"."orders"`.
    pub fn postgres(kind: Kind, side: Side, doing: &str, err: tokio_postgres::Error) -> Self {
        let transient = is_transient(&err);
        let message = format!("{side} server: {doing} failed: {}", describe_pg(&err));
        Error::new(kind, message)
            .on(side)
            .transient(transient)
            .caused_by(err)
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn side(&self) -> Option<Side> {
        self.side
    }

    /// Whether retrying the same operation could succeed.
    pub fn is_transient(&self) -> bool {
        self.transient
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The same error with `more` added to its message (a consequence, or what to do
    /// next), keeping its kind, side, transience and source — the one way errors are
    /// re-worded on their way up.
    pub fn context(mut self, more: impl AsRef<str>) -> Self {
        let more = more.as_ref();
        if !more.is_empty() {
            self.message.push('\n');
            self.message.push_str(more);
        }
        self
    }

    /// The server error behind this one, if any.
    fn db_error(&self) -> Option<&tokio_postgres::error::DbError> {
        let mut cur: Option<&(dyn std::error::Error + 'static)> =
            self.source.as_deref().map(|s| s as _);
        while let Some(e) = cur {
            if let Some(pg) = e.downcast_ref::<tokio_postgres::Error>() {
                return pg.as_db_error();
            }
            cur = e.source();
        }
        None
    }

    /// The transaction lost a race for a catalog name (see [`catalog_race`]).
    pub fn is_catalog_race(&self) -> bool {
        self.db_error().is_some_and(catalog_race)
    }

    /// Where the server was when it failed (`COPY t, line 3, column body: "…"`).
    pub fn server_context(&self) -> Option<&str> {
        self.db_error()?.where_()
    }

    /// The server's SQLSTATE, when the cause is a server error.
    pub fn sql_state(&self) -> Option<&SqlState> {
        let mut cur: Option<&(dyn std::error::Error + 'static)> =
            self.source.as_deref().map(|s| s as _);
        while let Some(e) = cur {
            if let Some(pg) = e.downcast_ref::<tokio_postgres::Error>() {
                return pg.code();
            }
            cur = e.source();
        }
        None
    }
}

/// Library result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A server error's message with its detail and hint, or the transport error, in one line.
pub fn describe_pg(err: &tokio_postgres::Error) -> String {
    if let Some(db) = err.as_db_error() {
        let mut s = db.message().to_string();
        if let Some(d) = db.detail() {
            s.push_str(&format!(" ({d})"));
        }
        if let Some(h) = db.hint() {
            s.push_str(&format!(" Hint: {h}"));
        }
        return s;
    }
    if err.is_closed() {
        return "the connection was closed by the server or the network".into();
    }
    // tokio-postgres puts the useful part (e.g. "Connection refused") in the source chain.
    let mut s = err.to_string();
    let mut cur = std::error::Error::source(err);
    while let Some(e) = cur {
        let t = e.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = e.source();
    }
    s
}

/// Server errors after which the same work, started again in a new transaction, can
/// succeed: the server or the connection went away, the server is starting or full, or
/// the transaction lost a race (serialization, deadlock, a lock wait that timed out).
const TRANSIENT_STATES: &[SqlState] = &[
    SqlState::ADMIN_SHUTDOWN,
    SqlState::CRASH_SHUTDOWN,
    SqlState::CANNOT_CONNECT_NOW,
    SqlState::TOO_MANY_CONNECTIONS,
    SqlState::T_R_SERIALIZATION_FAILURE,
    SqlState::T_R_DEADLOCK_DETECTED,
    SqlState::LOCK_NOT_AVAILABLE,
    SqlState::QUERY_CANCELED,
    SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT,
];

/// Whether a server `code` means "try again" (the connection-exception class 08 too).
pub fn is_transient_state(code: &SqlState) -> bool {
    code.code().starts_with("08") || TRANSIENT_STATES.contains(code)
}

/// Transport failures (no SQLSTATE: reset, refused, closed) and the transient server
/// states are transient, and so is a lost race on a catalog name; logic errors are not.
fn is_transient(err: &tokio_postgres::Error) -> bool {
    err.code().is_none_or(is_transient_state) || err.as_db_error().is_some_and(catalog_race)
}

/// A unique index of the catalog refused a name: two transactions created objects of
/// one name at once. A table and another table's array type, say — `_` and a 63-byte
/// name cut to 63 bytes is the name of a table that differs only in its last byte, or a
/// table named `_t` beside `t`: each transaction saw the name free, the second waited
/// for the first and lost. Run again once the first committed, it picks another name,
/// as the source did.
pub fn catalog_race(db: &tokio_postgres::error::DbError) -> bool {
    *db.code() == SqlState::UNIQUE_VIOLATION && db.schema() == Some("pg_catalog")
}
