//! libpq-compatible connection strings.
//!
//! tokio-postgres parses a subset of libpq's syntax but has no `PG*` environment variables,
//! no `~/.pgpass`, and no `verify-ca` / `verify-full`. Users arrive with strings that work
//! in `psql`, so this module gives them libpq's meaning:
//!
//! - both forms: `postgres://user:pw@host:5432/db?sslmode=require` and `host=… dbname=…`;
//! - defaults from `PGHOST`, `PGPORT`, `PGDATABASE`, `PGUSER`, `PGPASSWORD`, `PGSSLMODE`,
//!   `PGSSLROOTCERT`, `PGCONNECT_TIMEOUT`, `PGAPPNAME`, `PGPASSFILE`;
//! - the password from the string, else `PGPASSWORD`, else the password file with libpq's
//!   matching rules (first match wins, `*` wildcards, ignored when group/world readable);
//! - `sslmode` with libpq's meanings, including "require verifies the chain when a root
//!   certificate file exists".
//!
//! Parsing is phase one (text → raw key/value pairs), resolution is phase two (pairs +
//! environment → a validated [`ConnInfo`]). The password is never shown by `Display`/`Debug`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};

/// libpq's default Unix socket directory on Debian and derivatives.
pub const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";
/// Used when neither the string nor `PGCONNECT_TIMEOUT` sets one: a migration tool that
/// hangs forever on a black-holed host is worse than one that says so after 10 s.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// `application_name` unless the user sets one, so DBAs can see who is connected.
pub const DEFAULT_APPLICATION_NAME: &str = "pgbarge";

const KNOWN_KEYS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "passfile",
    "sslmode",
    "sslrootcert",
    "connect_timeout",
    "application_name",
    "fallback_application_name",
    "options",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "sslcert",
    "sslkey",
];

/// The environment variables that give defaults, in libpq's names.
const ENV_DEFAULTS: &[(&str, &str)] = &[
    ("host", "PGHOST"),
    ("hostaddr", "PGHOSTADDR"),
    ("port", "PGPORT"),
    ("dbname", "PGDATABASE"),
    ("user", "PGUSER"),
    ("password", "PGPASSWORD"),
    ("passfile", "PGPASSFILE"),
    ("sslmode", "PGSSLMODE"),
    ("sslrootcert", "PGSSLROOTCERT"),
    ("connect_timeout", "PGCONNECT_TIMEOUT"),
    ("application_name", "PGAPPNAME"),
    ("options", "PGOPTIONS"),
];

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// TLS only if the server insists (treated as `prefer` without fallback order).
    Allow,
    /// TLS if the server offers it, else plain; certificate not checked.
    Prefer,
    /// TLS or fail; certificate chain checked only if a root certificate file exists.
    Require,
    /// TLS, certificate chain checked against `sslrootcert`; host name not checked.
    VerifyCa,
    /// TLS, chain checked and the certificate must name the host.
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(Error::usage(format!(
                    "invalid sslmode \"{other}\": use disable, allow, prefer, require, verify-ca or verify-full"
                )))
            }
        })
    }

    /// As libpq spells it.
    pub fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// Where the root certificates for checking the server come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    /// A PEM file (`sslrootcert=path`, or `~/.postgresql/root.crt` when it exists).
    File(PathBuf),
    /// The operating system's trust store (`sslrootcert=system`).
    System,
}

/// Where the password came from; shown in authentication errors so the user knows which
/// one to fix (the password itself never is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordSource {
    ConnectionString,
    Environment,
    PasswordFile,
    None,
}

impl fmt::Display for PasswordSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PasswordSource::ConnectionString => "the connection string",
            PasswordSource::Environment => "PGPASSWORD",
            PasswordSource::PasswordFile => "the password file",
            PasswordSource::None => "nowhere (no password was given)",
        })
    }
}

/// The process environment as seen by connection resolution; a value so tests can make one.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    vars: BTreeMap<String, String>,
    home: Option<PathBuf>,
}

impl Environment {
    /// The current process's variables and home directory.
    pub fn from_process() -> Self {
        Environment {
            vars: std::env::vars().collect(),
            home: std::env::home_dir(),
        }
    }

    /// An environment with only the given variables and home directory.
    pub fn new<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
        home: Option<PathBuf>,
    ) -> Self {
        Environment {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            home,
        }
    }

    fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// A resolved, validated connection description. `Display` shows `user@host:port/db`,
/// never the password.
#[derive(Clone)]
pub struct ConnInfo {
    /// Host names, IP addresses, or Unix socket directories (starting with `/`).
    pub hosts: Vec<String>,
    /// One port per host.
    pub ports: Vec<u16>,
    pub user: String,
    pub dbname: String,
    password: Option<String>,
    pub password_source: PasswordSource,
    /// The password file and the line the password came from, if it did.
    pub password_line: Option<(PathBuf, usize)>,
    pub sslmode: SslMode,
    /// Root certificates to check the server with; `None` means "do not check".
    pub root_cert: Option<RootCert>,
    pub connect_timeout: Duration,
    pub application_name: String,
    pub options: Option<String>,
    /// libpq's `hostaddr` given with `host`: the address to connect to, while `host`
    /// names the server (for TLS verification).
    pub hostaddr: Option<std::net::IpAddr>,
    /// Options pgbarge does not read itself, passed to tokio-postgres as given (see
    /// [`passthrough_config`]).
    pub passthrough: Vec<(String, String)>,
    /// TCP keepalives (libpq's `keepalives*` keys): on by default, and sooner than the
    /// system's two hours, so a link that silently died is noticed while idle.
    pub keepalives: Keepalives,
    /// libpq's `tcp_user_timeout`: how long sent data may stay unacknowledged before the
    /// connection is closed. `None`: the system's default.
    pub tcp_user_timeout: Option<Duration>,
    /// Things the user should know (e.g. a password file ignored for its permissions).
    pub warnings: Vec<String>,
}

impl fmt::Debug for ConnInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnInfo")
            .field("hosts", &self.hosts)
            .field("ports", &self.ports)
            .field("user", &self.user)
            .field("dbname", &self.dbname)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("sslmode", &self.sslmode)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for ConnInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}@{}:{}/{}",
            self.user,
            self.host_display(),
            self.ports.first().copied().unwrap_or(5432),
            self.dbname
        )
    }
}

impl ConnInfo {
    /// Parses `text` (URL or `key=value` form) and resolves it against `env`.
    ///
    /// An error about a URL that carries a password never quotes any of the URL: a
    /// password holding `/`, `?` or `#` unencoded makes the rest of it parse as host,
    /// port or query, and the message would echo part of the password.
    pub fn parse(text: &str, env: &Environment) -> Result<Self> {
        parse_raw(text)
            .and_then(|raw| resolve(raw, env))
            .map_err(|e| match url_password(text) {
                true => Error::usage(URL_WITH_PASSWORD_ERROR),
                false => e,
            })
    }

    /// The password, for the connect stage only.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// Where the password came from, for an authentication error: `line 3 of
    /// /home/me/.pgpass`, `PGPASSWORD`, `the connection string`.
    pub fn password_origin(&self) -> String {
        match &self.password_line {
            Some((file, line)) => format!("line {line} of {}", file.display()),
            None => self.password_source.to_string(),
        }
    }

    /// The first host as a user would name it (a socket directory is shown as is).
    pub fn host_display(&self) -> &str {
        self.hosts
            .first()
            .map(String::as_str)
            .unwrap_or("localhost")
    }

    /// Whether the first host is a Unix socket directory (TLS does not apply there).
    pub fn is_socket(&self) -> bool {
        self.hosts.first().is_some_and(|h| h.starts_with('/'))
    }

    /// The connection goes over a network (not a Unix socket, not this machine's
    /// loopback) without checking the server's certificate: `sslmode` below
    /// `verify-ca` lets anyone on the path pose as the server — and read the data and
    /// the password — and `prefer` (libpq's default) even falls back to plaintext.
    pub fn unverified_remote(&self) -> bool {
        let loopback = |host: &str| {
            host.starts_with('/')
                || host.eq_ignore_ascii_case("localhost")
                || host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        };
        let remote = match self.hostaddr {
            Some(addr) => !addr.is_loopback(),
            None => self.hosts.iter().any(|h| !loopback(h)),
        };
        remote && !matches!(self.sslmode, SslMode::VerifyCa | SslMode::VerifyFull)
    }

    /// What [`ConnInfo::unverified_remote`] risks, for `what` (`the target`).
    pub fn tls_risk(&self, what: &str) -> Option<String> {
        self.unverified_remote().then(|| {
            format!(
                "{what} ({}) is reached over the network without checking its certificate \
                 (sslmode={}): anyone on the path could pose as the server and read the data \
                 and the password{}",
                self.host_display(),
                self.sslmode.name(),
                if matches!(
                    self.sslmode,
                    SslMode::Disable | SslMode::Allow | SslMode::Prefer
                ) {
                    ", and the connection may not be encrypted at all"
                } else {
                    ""
                }
            )
        })
    }

    /// [`ConnInfo::tls_risk`] with what to do about it.
    pub fn tls_warning(&self, what: &str) -> Option<String> {
        self.tls_risk(what).map(|risk| {
            format!(
                "{risk}. {TLS_FIX}; --tls-verify (or PGBARGE_TLS_VERIFY=1) makes this an error."
            )
        })
    }
}

/// How to make a connection check the server's certificate.
pub const TLS_FIX: &str = "Add sslmode=verify-full with your provider's CA \
    (sslrootcert=/path/to/ca.pem, or sslrootcert=system for the operating system's roots)";

/// Phase one: the text as key/value pairs, exactly as written.
fn parse_raw(text: &str) -> Result<BTreeMap<String, String>> {
    let text = text.trim();
    let mut map = if let Some(rest) = text
        .strip_prefix("postgresql://")
        .or_else(|| text.strip_prefix("postgres://"))
    {
        parse_url(rest)?
    } else if !text.contains('=') && !text.is_empty() {
        // libpq: a string without '=' is a database name.
        BTreeMap::from([("dbname".to_string(), text.to_string())])
    } else {
        parse_keyword_value(text)?
    };
    for (key, value) in &map {
        // Options pgbarge does not handle itself go to tokio-postgres's own parser
        // (`target_session_attrs`, `channel_binding`, `load_balance_hosts`, …): used if
        // it knows them, refused here if not.
        if !KNOWN_KEYS.contains(&key.as_str())
            && passthrough_config(&[(key.clone(), value.clone())]).is_err()
        {
            return Err(Error::usage(format!(
                "invalid connection option \"{key}\" (or its value): pgbarge accepts libpq's \
                 options ({}, and those tokio-postgres knows, e.g. target_session_attrs, \
                 channel_binding, load_balance_hosts)",
                KNOWN_KEYS.join(", ")
            )));
        }
    }
    map.retain(|_, v| !v.is_empty());
    Ok(map)
}

fn parse_keyword_value(text: &str) -> Result<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    let mut chars = text.chars().peekable();
    // The last value was an unquoted password: what follows may be the rest of it (a
    // password with a space), so it is never shown.
    let mut after_password = false;
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(map);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let equals = chars.next() == Some('=');
        if after_password && (!equals || !KNOWN_KEYS.contains(&key.as_str())) {
            return Err(Error::usage(
                "the connection string's password is followed by a word that is not a \
                 key=value pair (not shown: it may be part of the password). A password \
                 with a space must be quoted: password='…' (a quote or backslash in it \
                 escaped with a backslash), or given in PGPASSWORD or ~/.pgpass.",
            ));
        }
        if !equals {
            return Err(Error::usage(format!(
                "missing \"=\" after \"{key}\" in the connection string (expected key=value pairs or a postgres:// URL)"
            )));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    None => {
                        return Err(Error::usage(format!(
                            "unterminated quoted value for \"{key}\" in the connection string"
                        )))
                    }
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => {
                            return Err(Error::usage(
                                "connection string ends with a lone backslash",
                            ))
                        }
                    },
                    Some('\'') => break,
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        value.push(n);
                    }
                } else {
                    value.push(c);
                }
            }
            after_password = key == "password";
            map.insert(key, value);
            continue;
        }
        after_password = false;
        map.insert(key, value);
    }
}

fn percent_decode(s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(b) => {
                    out.push(b);
                    i += 3;
                    continue;
                }
                None => {
                    return Err(Error::usage(format!(
                        "invalid percent-encoding in connection URL near \"{}\"",
                        &s[i..s.len().min(i + 3)]
                    )))
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).map_err(|_| Error::usage("connection URL decodes to invalid UTF-8"))
}

/// What a malformed URL with a password gets instead of its parser's message.
const URL_WITH_PASSWORD_ERROR: &str = "the connection URL cannot be read (it is not quoted here, \
     since it holds a password). If the password contains any of @ : / ? # % &, \
     percent-encode them: @ as %40, : as %3A, / as %2F, ? as %3F, # as %23, % as %25, & as %26. \
     Or use the key=value form: \"host=… user=… password='…' dbname=…\", or PGPASSWORD.";

/// Whether `text` is a URL whose user information (before its last `@`) holds a
/// password (`user:password@`), however malformed the rest.
fn url_password(text: &str) -> bool {
    let text = text.trim();
    let Some(rest) = text
        .strip_prefix("postgresql://")
        .or_else(|| text.strip_prefix("postgres://"))
    else {
        return false;
    };
    rest.rfind('@').is_some_and(|at| rest[..at].contains(':'))
}

/// `[user[:password]@][host[:port][,host[:port]…]][/dbname][?key=value&…]`
fn parse_url(rest: &str) -> Result<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    let (main, query) = match rest.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match main.find('/') {
        Some(i) => (&main[..i], Some(&main[i + 1..])),
        None => (main, None),
    };
    // The password may contain '@' only percent-encoded; the last '@' ends the user info.
    let hostspec = match authority.rfind('@') {
        Some(i) => {
            let userinfo = &authority[..i];
            match userinfo.split_once(':') {
                Some((u, p)) => {
                    map.insert("user".into(), percent_decode(u)?);
                    map.insert("password".into(), percent_decode(p)?);
                }
                None => {
                    map.insert("user".into(), percent_decode(userinfo)?);
                }
            }
            &authority[i + 1..]
        }
        None => authority,
    };
    if !hostspec.is_empty() {
        let mut hosts = Vec::new();
        let mut ports = Vec::new();
        for part in hostspec.split(',') {
            let (host, port) = if let Some(stripped) = part.strip_prefix('[') {
                let end = stripped.find(']').ok_or_else(|| {
                    Error::usage(format!("unterminated [ in connection URL host \"{part}\""))
                })?;
                let host = &stripped[..end];
                let port = stripped[end + 1..].strip_prefix(':').unwrap_or("");
                (host.to_string(), port.to_string())
            } else {
                match part.rsplit_once(':') {
                    Some((h, p)) => (percent_decode(h)?, p.to_string()),
                    None => (percent_decode(part)?, String::new()),
                }
            };
            hosts.push(host);
            ports.push(port);
        }
        map.insert("host".into(), hosts.join(","));
        if ports.iter().any(|p| !p.is_empty()) {
            map.insert("port".into(), ports.join(","));
        }
    }
    if let Some(path) = path {
        if !path.is_empty() {
            map.insert("dbname".into(), percent_decode(path)?);
        }
    }
    if let Some(query) = query {
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').ok_or_else(|| {
                Error::usage(format!(
                    "invalid URL query parameter \"{pair}\" (expected key=value)"
                ))
            })?;
            map.insert(percent_decode(k)?, percent_decode(v)?);
        }
    }
    Ok(map)
}

/// A tokio-postgres configuration from the options pgbarge passes through unread, in
/// tokio-postgres's own `key='value'` syntax. Its error never holds a value (these are
/// never the password, which pgbarge reads itself).
pub fn passthrough_config(
    options: &[(String, String)],
) -> std::result::Result<tokio_postgres::Config, String> {
    let text = options
        .iter()
        .map(|(k, v)| format!("{k}='{}'", v.replace('\\', "\\\\").replace('\'', "\\'")))
        .collect::<Vec<_>>()
        .join(" ");
    text.parse::<tokio_postgres::Config>()
        .map_err(|_| "not a tokio-postgres option".to_string())
}

/// TCP keepalive settings, libpq's keys with pgbarge's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalives {
    pub enabled: bool,
    /// Idle time before the first probe (`keepalives_idle`).
    pub idle: Duration,
    /// Between probes (`keepalives_interval`).
    pub interval: Duration,
    /// Unanswered probes before the connection is dropped (`keepalives_count`).
    pub count: u32,
}

impl Default for Keepalives {
    /// A dead idle link is noticed after about a minute (30 s + 3 × 10 s): cloud NATs and
    /// load balancers drop idle flows after 350 s (AWS) or less.
    fn default() -> Self {
        Keepalives {
            enabled: true,
            idle: Duration::from_secs(30),
            interval: Duration::from_secs(10),
            count: 3,
        }
    }
}

/// A whole number of seconds (or milliseconds, `millis`) for `key`, or a usage error.
fn duration_key(
    raw: &BTreeMap<String, String>,
    key: &str,
    millis: bool,
) -> Result<Option<Duration>> {
    let Some(text) = raw.get(key) else {
        return Ok(None);
    };
    let n: u64 = text.trim().parse().map_err(|_| {
        Error::usage(format!(
            "invalid {key} \"{text}\": expected a whole number of {}",
            if millis { "milliseconds" } else { "seconds" }
        ))
    })?;
    Ok(Some(if millis {
        Duration::from_millis(n)
    } else {
        Duration::from_secs(n)
    }))
}

fn keepalives(raw: &BTreeMap<String, String>) -> Result<Keepalives> {
    let mut k = Keepalives::default();
    if let Some(on) = raw.get("keepalives") {
        k.enabled = match on.trim() {
            "0" => false,
            "1" => true,
            other => {
                return Err(Error::usage(format!(
                    "invalid keepalives \"{other}\": expected 1 (on) or 0 (off)"
                )))
            }
        };
    }
    if let Some(idle) = duration_key(raw, "keepalives_idle", false)? {
        k.idle = idle.max(Duration::from_secs(1));
    }
    if let Some(interval) = duration_key(raw, "keepalives_interval", false)? {
        k.interval = interval.max(Duration::from_secs(1));
    }
    if let Some(count) = raw.get("keepalives_count") {
        k.count = count.trim().parse().map_err(|_| {
            Error::usage(format!(
                "invalid keepalives_count \"{count}\": expected a whole number"
            ))
        })?;
    }
    Ok(k)
}

/// Phase two: fill defaults from the environment, find the password, validate.
fn resolve(raw: BTreeMap<String, String>, env: &Environment) -> Result<ConnInfo> {
    let password_in_string = raw.contains_key("password");
    let r = Resolving::new(raw, env)?;
    let hostaddr = r.hostaddr()?;
    let hosts = r.hosts();
    let ports = r.ports(hosts.len())?;
    let user = r.user();
    let dbname = r.raw.get("dbname").cloned().unwrap_or_else(|| user.clone());
    let mut warnings = Vec::new();
    let password = match r.password_given(password_in_string) {
        Some(given) => given,
        None => r.password_from_file(&hosts, &ports, &dbname, &user, &mut warnings),
    };
    let (sslmode, root_cert) = r.tls()?;
    let connect_timeout = r.connect_timeout()?;
    let raw = &r.raw;
    Ok(ConnInfo {
        hosts,
        ports,
        user,
        dbname,
        password: password.value,
        password_source: password.source,
        password_line: password.line,
        sslmode,
        root_cert,
        connect_timeout,
        application_name: r.application_name(),
        options: raw.get("options").cloned(),
        hostaddr,
        passthrough: raw
            .iter()
            .filter(|(k, _)| !KNOWN_KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        keepalives: keepalives(raw)?,
        // libpq: 0 means the system's default.
        tcp_user_timeout: duration_key(raw, "tcp_user_timeout", true)?.filter(|d| !d.is_zero()),
        warnings,
    })
}

/// Phase two's input: the pairs as written, with the environment's defaults filled in.
/// Each method resolves one part of the connection; [`resolve`] calls them in the order
/// their errors are reported.
struct Resolving<'e> {
    raw: BTreeMap<String, String>,
    env: &'e Environment,
}

/// A password and where it came from.
struct FoundPassword {
    value: Option<String>,
    source: PasswordSource,
    /// The password file and line, when it came from one.
    line: Option<(PathBuf, usize)>,
}

impl<'e> Resolving<'e> {
    /// `raw` with the `PG*` defaults of `env` added; client certificates refused.
    fn new(mut raw: BTreeMap<String, String>, env: &'e Environment) -> Result<Self> {
        for (key, var) in ENV_DEFAULTS {
            if !raw.contains_key(*key) {
                if let Some(v) = env.var(var) {
                    raw.insert(key.to_string(), v.to_string());
                }
            }
        }
        for unsupported in ["sslcert", "sslkey"] {
            if raw.contains_key(unsupported) {
                return Err(Error::usage(format!(
                    "{unsupported} (TLS client certificates) is not supported by pgbarge yet; \
                     use password authentication"
                )));
            }
        }
        Ok(Resolving { raw, env })
    }

    /// libpq: with both, `hostaddr` is where to connect and `host` the name the server's
    /// certificate must carry.
    fn hostaddr(&self) -> Result<Option<std::net::IpAddr>> {
        match (self.raw.get("host"), self.raw.get("hostaddr")) {
            (Some(_), Some(addr)) => Ok(Some(addr.trim().parse().map_err(|_| {
                Error::usage(format!(
                    "invalid hostaddr \"{addr}\": expected one IPv4 or IPv6 address"
                ))
            })?)),
            _ => Ok(None),
        }
    }

    /// The hosts to try, in order; the local socket directory (or `localhost`) if none.
    fn hosts(&self) -> Vec<String> {
        match self.raw.get("host").or(self.raw.get("hostaddr")) {
            Some(h) => h.split(',').map(|s| s.trim().to_string()).collect(),
            None if Path::new(DEFAULT_SOCKET_DIR).is_dir() => vec![DEFAULT_SOCKET_DIR.to_string()],
            None => vec!["localhost".to_string()],
        }
    }

    /// One port per host: a single port serves them all, an empty one is 5432.
    fn ports(&self, hosts: usize) -> Result<Vec<u16>> {
        let Some(p) = self.raw.get("port") else {
            return Ok(vec![5432; hosts]);
        };
        let parsed = p
            .split(',')
            .map(|s| {
                let s = s.trim();
                if s.is_empty() {
                    Ok(5432)
                } else {
                    s.parse::<u16>().map_err(|_| {
                        Error::usage(format!(
                            "invalid port \"{s}\": expected a number from 1 to 65535"
                        ))
                    })
                }
            })
            .collect::<Result<Vec<u16>>>()?;
        match parsed.len() {
            1 => Ok(vec![parsed[0]; hosts]),
            n if n == hosts => Ok(parsed),
            n => Err(Error::usage(format!(
                "{n} ports given for {hosts} hosts in the connection string"
            ))),
        }
    }

    /// The user given, else the operating system's (as libpq), else `postgres`.
    fn user(&self) -> String {
        self.raw
            .get("user")
            .cloned()
            .or_else(|| self.env.var("USER").map(str::to_string))
            .or_else(|| self.env.var("LOGNAME").map(str::to_string))
            .unwrap_or_else(|| "postgres".to_string())
    }

    /// The password in the string or (filled in from) `PGPASSWORD`, if any.
    fn password_given(&self, in_string: bool) -> Option<FoundPassword> {
        let p = self.raw.get("password")?;
        Some(FoundPassword {
            value: Some(p.clone()),
            source: if in_string {
                PasswordSource::ConnectionString
            } else {
                PasswordSource::Environment
            },
            line: None,
        })
    }

    /// The password file's first line matching the first host and port, the database
    /// and the user (a socket directory matches as `localhost`).
    fn password_from_file(
        &self,
        hosts: &[String],
        ports: &[u16],
        dbname: &str,
        user: &str,
        warnings: &mut Vec<String>,
    ) -> FoundPassword {
        let none = || FoundPassword {
            value: None,
            source: PasswordSource::None,
            line: None,
        };
        let passfile = self
            .raw
            .get("passfile")
            .map(PathBuf::from)
            .or_else(|| self.env.home.as_ref().map(|h| h.join(".pgpass")));
        let Some((file, entries)) =
            passfile.and_then(|f| read_passfile(&f, warnings).map(|e| (f, e)))
        else {
            return none();
        };
        let host = hosts.first().map(String::as_str).unwrap_or("localhost");
        let host = if host == DEFAULT_SOCKET_DIR {
            "localhost"
        } else {
            host
        };
        let port = ports.first().copied().unwrap_or(5432).to_string();
        match lookup_password(&entries, host, &port, dbname, user) {
            Some((p, line)) => FoundPassword {
                value: Some(p),
                source: PasswordSource::PasswordFile,
                line: Some((file, line)),
            },
            None => none(),
        }
    }

    /// `sslmode` and the root certificates to check the server with, as libpq combines
    /// them: `sslrootcert=system` implies `verify-full`, the verifying modes need a root
    /// certificate, and the modes that do not check drop it.
    fn tls(&self) -> Result<(SslMode, Option<RootCert>)> {
        let root_cert = match self.raw.get("sslrootcert").map(String::as_str) {
            Some("system") => Some(RootCert::System),
            Some(path) => Some(RootCert::File(PathBuf::from(path))),
            None => self
                .env
                .home
                .as_ref()
                .map(|h| h.join(".postgresql/root.crt"))
                .filter(|p| p.is_file())
                .map(RootCert::File),
        };
        let default_mode = if root_cert == Some(RootCert::System) {
            SslMode::VerifyFull
        } else {
            SslMode::Prefer
        };
        let sslmode = match self.raw.get("sslmode") {
            Some(m) => SslMode::parse(m)?,
            None => default_mode,
        };
        if root_cert == Some(RootCert::System) && sslmode != SslMode::VerifyFull {
            return Err(Error::usage(format!(
                "sslrootcert=system requires sslmode=verify-full (got {sslmode:?}): the system's \
                 trusted roots only make sense when the host name is checked too"
            )));
        }
        if matches!(sslmode, SslMode::VerifyCa | SslMode::VerifyFull) && root_cert.is_none() {
            return Err(Error::usage(format!(
                "sslmode={} needs a root certificate to check the server against, and \
                 ~/.postgresql/root.crt does not exist. Give one with sslrootcert=/path/to/ca.pem \
                 (your provider's CA bundle, e.g. AWS RDS's global-bundle.pem), use \
                 sslrootcert=system for the operating system's trusted roots, or use sslmode=require \
                 to encrypt without checking the certificate.",
                if sslmode == SslMode::VerifyCa {
                    "verify-ca"
                } else {
                    "verify-full"
                }
            )));
        }
        // libpq: with require, an existing root certificate file means "verify the chain".
        let root_cert = match sslmode {
            SslMode::Disable | SslMode::Allow | SslMode::Prefer => None,
            _ => root_cert,
        };
        Ok((sslmode, root_cert))
    }

    fn connect_timeout(&self) -> Result<Duration> {
        let Some(t) = self.raw.get("connect_timeout") else {
            return Ok(DEFAULT_CONNECT_TIMEOUT);
        };
        let secs: i64 = t.trim().parse().map_err(|_| {
            Error::usage(format!(
                "invalid connect_timeout \"{t}\": expected a whole number of seconds"
            ))
        })?;
        // libpq: zero or negative means wait forever; values below 2 s are raised to 2.
        Ok(if secs <= 0 {
            Duration::from_secs(u32::MAX as u64)
        } else {
            Duration::from_secs(secs.max(2) as u64)
        })
    }

    fn application_name(&self) -> String {
        self.raw
            .get("application_name")
            .or(self.raw.get("fallback_application_name"))
            .cloned()
            .unwrap_or_else(|| DEFAULT_APPLICATION_NAME.to_string())
    }
}

/// One `hostname:port:database:username:password` line.
#[derive(Debug)]
struct PassEntry {
    fields: [String; 5],
    /// 1-based line number in the file.
    line: usize,
}

fn read_passfile(path: &Path, warnings: &mut Vec<String>) -> Option<Vec<PassEntry>> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() {
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            warnings.push(format!(
                "password file \"{}\" has group or world access and is ignored (as libpq does); \
                 run: chmod 0600 {}",
                path.display(),
                path.display()
            ));
            return None;
        }
    }
    let text = std::fs::read_to_string(path).ok()?;
    Some(parse_passfile(&text))
}

fn parse_passfile(text: &str) -> Vec<PassEntry> {
    let mut entries = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut fields: Vec<String> = vec![String::new()];
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    if let Some(n) = chars.next() {
                        if let Some(last) = fields.last_mut() {
                            last.push(n);
                        }
                    }
                }
                ':' if fields.len() < 5 => fields.push(String::new()),
                c => {
                    if let Some(last) = fields.last_mut() {
                        last.push(c);
                    }
                }
            }
        }
        if let Ok(fields) = <[String; 5]>::try_from(fields) {
            entries.push(PassEntry {
                fields,
                line: number + 1,
            });
        }
    }
    entries
}

fn lookup_password(
    entries: &[PassEntry],
    host: &str,
    port: &str,
    db: &str,
    user: &str,
) -> Option<(String, usize)> {
    let wanted = [host, port, db, user];
    entries
        .iter()
        .find(|e| {
            e.fields[..4]
                .iter()
                .zip(wanted)
                .all(|(f, w)| f == "*" || f == w)
        })
        .map(|e| (e.fields[4].clone(), e.line))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Environment {
        Environment::new(vars.iter().copied(), None)
    }

    #[test]
    fn a_remote_host_without_certificate_checks_is_told() {
        let unverified = |text: &str| {
            ConnInfo::parse(text, &env(&[]))
                .unwrap()
                .unverified_remote()
        };
        assert!(unverified("host=db.example.com dbname=x"));
        assert!(unverified("host=db.example.com sslmode=require dbname=x"));
        assert!(unverified("postgres://u@10.1.2.3/x"));
        assert!(!unverified(
            "host=db.example.com sslmode=verify-full sslrootcert=/ca.pem dbname=x"
        ));
        assert!(!unverified("host=localhost dbname=x"));
        assert!(!unverified("host=127.0.0.1 dbname=x"));
        assert!(!unverified("postgres://u@[::1]/x"));
        assert!(!unverified("host=/var/run/postgresql dbname=x"));
        let c = ConnInfo::parse("host=db.example.com dbname=x", &env(&[])).unwrap();
        let warning = c.tls_warning("the target").unwrap();
        assert!(
            warning.contains("sslmode=prefer") && warning.contains("--tls-verify"),
            "{warning}"
        );
    }

    #[test]
    fn a_password_with_an_unquoted_space_is_never_echoed() {
        for text in [
            "host=h password=sec ret dbname=x",
            "host=h password=sec ret=x dbname=x",
            "host=h password=sec ret",
        ] {
            let err = ConnInfo::parse(text, &env(&[])).expect_err(text);
            assert!(!err.message().contains("ret"), "{text}: {}", err.message());
            assert!(err.message().contains("password='…'"), "{}", err.message());
        }
        // A known key after the password is fine, and a quoted space too.
        let c = ConnInfo::parse("host=h password=secret dbname=x", &env(&[])).unwrap();
        assert_eq!(c.password(), Some("secret"));
        let c = ConnInfo::parse("host=h password='sec ret' dbname=x", &env(&[])).unwrap();
        assert_eq!(c.password(), Some("sec ret"));
    }

    #[test]
    fn url_form() {
        let c = ConnInfo::parse(
            "postgres://alice:s%40cret@db.example.com:6543/shop?sslmode=require&connect_timeout=5",
            &env(&[]),
        )
        .unwrap();
        assert_eq!(c.hosts, vec!["db.example.com"]);
        assert_eq!(c.ports, vec![6543]);
        assert_eq!(c.user, "alice");
        assert_eq!(c.password(), Some("s@cret"));
        assert_eq!(c.dbname, "shop");
        assert_eq!(c.sslmode, SslMode::Require);
        assert_eq!(c.connect_timeout, Duration::from_secs(5));
        assert_eq!(c.application_name, "pgbarge");
        assert_eq!(c.to_string(), "alice@db.example.com:6543/shop");
        assert!(!format!("{c:?}").contains("s@cret"));
    }

    #[test]
    fn url_ipv6_socket_and_multi_host() {
        let c = ConnInfo::parse("postgresql://[::1]:5433/db", &env(&[])).unwrap();
        assert_eq!(c.hosts, vec!["::1"]);
        assert_eq!(c.ports, vec![5433]);
        let c = ConnInfo::parse("postgresql://%2Ftmp%2Fsock/db?user=u", &env(&[])).unwrap();
        assert_eq!(c.hosts, vec!["/tmp/sock"]);
        assert!(c.is_socket());
        let c = ConnInfo::parse("postgresql://a:1,b:2/db", &env(&[])).unwrap();
        assert_eq!(c.hosts, vec!["a", "b"]);
        assert_eq!(c.ports, vec![1, 2]);
    }

    #[test]
    fn keyword_value_form_with_quotes() {
        let c = ConnInfo::parse(
            r"host=h port = 5555 dbname='my db' user=bob password='it\'s'",
            &env(&[]),
        )
        .unwrap();
        assert_eq!(c.hosts, vec!["h"]);
        assert_eq!(c.ports, vec![5555]);
        assert_eq!(c.dbname, "my db");
        assert_eq!(c.password(), Some("it's"));
    }

    #[test]
    fn environment_gives_defaults_only() {
        let e = env(&[
            ("PGHOST", "envhost"),
            ("PGPORT", "7777"),
            ("PGUSER", "envuser"),
            ("PGPASSWORD", "envpw"),
            ("PGSSLMODE", "disable"),
        ]);
        let c = ConnInfo::parse("host=explicit dbname=d", &e).unwrap();
        assert_eq!(c.hosts, vec!["explicit"]);
        assert_eq!(c.ports, vec![7777]);
        assert_eq!(c.user, "envuser");
        assert_eq!(c.password(), Some("envpw"));
        assert_eq!(c.password_source, PasswordSource::Environment);
        assert_eq!(c.sslmode, SslMode::Disable);
        // dbname defaults to the user name
        let c = ConnInfo::parse("host=h", &e).unwrap();
        assert_eq!(c.dbname, "envuser");
    }

    #[test]
    fn rejects_bad_input_clearly() {
        for (s, needle) in [
            ("host=h bogus=1", "invalid connection option \"bogus\""),
            ("host=h sslmode=maybe", "invalid sslmode"),
            ("host=h port=abc", "invalid port"),
            ("host=h password='open", "unterminated"),
            ("host=h sslmode=verify-full", "needs a root certificate"),
            ("host=h connect_timeout=x", "invalid connect_timeout"),
        ] {
            let err = ConnInfo::parse(s, &env(&[])).unwrap_err();
            assert!(err.message().contains(needle), "{s}: {}", err.message());
        }
    }

    #[test]
    fn options_pgbarge_does_not_read_go_to_tokio_postgres() {
        let c = ConnInfo::parse(
            "host=h target_session_attrs=read-write channel_binding=require load_balance_hosts=random",
            &env(&[]),
        )
        .expect("tokio-postgres knows these");
        assert_eq!(c.passthrough.len(), 3);
        assert!(passthrough_config(&c.passthrough).is_ok());
        assert!(passthrough_config(&[]).is_ok(), "none at all is fine");
        let err = ConnInfo::parse("host=h target_session_attrs=sometimes", &env(&[])).unwrap_err();
        assert!(
            err.message().contains("target_session_attrs"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn a_malformed_url_never_echoes_its_password() {
        for url in [
            "postgres://app:s3cret/x@host/db",
            "postgres://app:s3cr?et@host/db",
            "postgres://app:s3%ZZcret@host/db",
            "postgres://app:secret@host:99999/db",
        ] {
            let err = ConnInfo::parse(url, &env(&[])).unwrap_err();
            for part in ["s3", "cret", "et@", "secret", "ZZ"] {
                assert!(!err.message().contains(part), "{url}: {}", err.message());
            }
            assert!(
                err.message().contains("percent-encode"),
                "{}",
                err.message()
            );
        }
        // Without a password, the parser's own message (it has nothing to hide).
        let err = ConnInfo::parse("postgres://app@host:notaport/db", &env(&[])).unwrap_err();
        assert!(err.message().contains("invalid port"), "{}", err.message());
    }

    #[test]
    fn keepalives_default_on_and_follow_libpq_keys() {
        let c = ConnInfo::parse("host=h", &env(&[])).expect("parses");
        assert_eq!(c.keepalives, Keepalives::default());
        assert!(c.keepalives.enabled && c.tcp_user_timeout.is_none());
        let c = ConnInfo::parse(
            "host=h keepalives=0 keepalives_idle=5 keepalives_interval=2 keepalives_count=4 tcp_user_timeout=9000",
            &env(&[]),
        )
        .expect("parses");
        assert!(!c.keepalives.enabled);
        assert_eq!(c.keepalives.idle, Duration::from_secs(5));
        assert_eq!(c.keepalives.interval, Duration::from_secs(2));
        assert_eq!(c.keepalives.count, 4);
        assert_eq!(c.tcp_user_timeout, Some(Duration::from_millis(9000)));
        for bad in [
            "keepalives=2",
            "keepalives_idle=soon",
            "tcp_user_timeout=-1",
        ] {
            assert!(
                ConnInfo::parse(&format!("host=h {bad}"), &env(&[])).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn hostaddr_with_host_connects_there_and_verifies_the_name() {
        let c =
            ConnInfo::parse("host=db.example.com hostaddr=127.0.0.1", &env(&[])).expect("parses");
        assert_eq!(c.hosts, vec!["db.example.com".to_string()]);
        assert_eq!(c.hostaddr, Some("127.0.0.1".parse().expect("an address")));
        assert!(ConnInfo::parse("host=h hostaddr=nowhere", &env(&[])).is_err());
    }

    #[test]
    fn passfile_rules() {
        let entries = parse_passfile(
            "# comment\nother:5432:*:*:nope\nlocalhost:5432:shop:app:first\n*:*:*:app:wild\nh\\:x:1:d:u:esc\\:aped\n",
        );
        let found = |h, p, d, u| lookup_password(&entries, h, p, d, u);
        assert_eq!(
            found("localhost", "5432", "shop", "app"),
            Some(("first".into(), 3))
        );
        assert_eq!(
            found("db.example", "6000", "x", "app"),
            Some(("wild".into(), 4))
        );
        assert_eq!(found("h:x", "1", "d", "u"), Some(("esc:aped".into(), 5)));
        assert_eq!(lookup_password(&entries, "a", "1", "d", "nobody"), None);
    }

    #[test]
    fn passfile_from_home_with_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("pgbarge-pgpass-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(".pgpass");
        std::fs::write(&file, "h:5432:db:u:filepw\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = Environment::new(Vec::<(String, String)>::new(), Some(dir.clone()));
        let c = ConnInfo::parse("host=h dbname=db user=u", &e).unwrap();
        assert_eq!(c.password(), Some("filepw"));
        assert_eq!(c.password_source, PasswordSource::PasswordFile);
        assert_eq!(
            c.password_origin(),
            format!("line 1 of {}", file.display()),
            "the hint names the file and the line"
        );
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let c = ConnInfo::parse("host=h dbname=db user=u", &e).unwrap();
        assert_eq!(c.password(), None);
        assert!(c.warnings[0].contains("chmod 0600"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn require_with_root_cert_verifies_chain() {
        let c = ConnInfo::parse("host=h sslmode=require sslrootcert=/ca.pem", &env(&[])).unwrap();
        assert_eq!(c.root_cert, Some(RootCert::File("/ca.pem".into())));
        let c = ConnInfo::parse("host=h sslmode=require", &env(&[])).unwrap();
        assert_eq!(c.root_cert, None);
    }
}
