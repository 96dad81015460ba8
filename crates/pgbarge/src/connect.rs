//! Opening connections: tokio-postgres over rustls, with libpq's `sslmode` meanings,
//! a hard connect timeout, and errors that tell the user what to fix.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres::config::SslMode as PgSslMode;
use tokio_postgres::Client;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::conninfo::{ConnInfo, RootCert, SslMode};
use crate::error::{describe_pg, Error, Kind, Result, Side};
use crate::transport::{Addr, Piecewise, PiecewiseTls, Socket, TcpSettings};
use tokio_postgres::tls::MakeTlsConnect;

/// Session settings every pgbarge connection runs with, so that text COPY output from one
/// server is read back identically by the other and no server-side default (a cloud
/// provider's `statement_timeout`, a user's `search_path`) changes what happens.
/// `search_path = ''` makes the catalog functions (`format_type`, `pg_get_expr`) qualify
/// every name, which is what DDL replayed on another server needs. `row_security = off`
/// (as pg_dump sets it): a table whose policies would hide rows from the role is an error,
/// never a silently partial copy or an "equal" verdict over the visible rows only.
/// `jit = off`: the catalog queries are estimated expensive enough to trigger JIT
/// compilation, which cost 0.7 s per run (measured) for queries that take milliseconds.
const SESSION_SETUP: &str = "SET client_encoding = 'UTF8'; \
     SET DateStyle = 'ISO, YMD'; \
     SET IntervalStyle = 'postgres'; \
     SET extra_float_digits = 3; \
     SET TimeZone = 'UTC'; \
     SET standard_conforming_strings = on; \
     SET bytea_output = 'hex'; \
     SET statement_timeout = 0; \
     SET idle_in_transaction_session_timeout = 0; \
     SET row_security = off; \
     SET jit = off; \
     SELECT pg_catalog.set_config('search_path', '', false)";

/// The last column identifies the database across connections made by different routes
/// (socket or TCP, host name or address): a server's start time to the microsecond, its
/// port and the database's OID. Readable by any role, unlike the system identifier.
const SERVER_INFO: &str = "SELECT current_setting('server_version_num')::int4, \
     current_database(), \
     pg_catalog.pg_postmaster_start_time()::text || '/' || current_setting('port') || '/' || \
     (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())::text, \
     pg_catalog.pg_backend_pid(), \
     (SELECT backend_start::text FROM pg_catalog.pg_stat_activity \
       WHERE pid = pg_catalog.pg_backend_pid())";

/// Ends one of pgbarge's own earlier sessions that may still run on the server after its
/// connection stalled or vanished (the server has not noticed the client is gone, and the
/// session may hold a lock the retry needs). A role may end its own sessions. The start
/// time guards against a reused process id. From PostgreSQL 14 on it waits (up to 5 s)
/// for the session to be gone, so its locks are released when this returns.
const TERMINATE_SESSION: &str = "SELECT pg_catalog.pg_terminate_backend(pid) \
     FROM pg_catalog.pg_stat_activity WHERE pid = $1 AND backend_start::text = $2";
const TERMINATE_SESSION_WAIT: &str = "SELECT pg_catalog.pg_terminate_backend(pid, 5000) \
     FROM pg_catalog.pg_stat_activity WHERE pid = $1 AND backend_start::text = $2";

/// Which server session a connection is: its process id and start time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    pub pid: i32,
    pub started: String,
}

/// An open connection to one side, with what we learned about the server on arrival.
pub struct Connection {
    pub client: Client,
    pub side: Side,
    /// The connection description (password redacted by its `Display`).
    pub info: ConnInfo,
    pub server_version_num: i32,
    pub database: String,
    /// Equal for two connections to the same database of the same running server.
    pub database_identity: String,
    /// The server session behind this connection.
    pub backend: Backend,
    /// Where it was opened, and the TLS setup: a cancel request goes there the same way.
    peer: Peer,
    tls: MakeRustlsConnect,
}

/// The address a connection reached, and the host name TLS checked there.
#[derive(Debug, Clone)]
struct Peer {
    addr: Addr,
    host: String,
    tcp: TcpSettings,
}

/// Cancels what a connection is running, from anywhere (it holds no borrow of the
/// connection), so a stopped run does not leave a backend working — and holding locks —
/// after we have gone. Best effort: the server rolls back on disconnect anyway.
#[derive(Clone)]
pub struct Canceller {
    token: tokio_postgres::CancelToken,
    peer: Peer,
    tls: MakeRustlsConnect,
    timeout: std::time::Duration,
}

impl Canceller {
    pub async fn cancel(&self) {
        let request = async {
            let socket = Socket::open(&self.peer.addr, self.peer.tcp).await.ok()?;
            let mut tls = self.tls.clone();
            let connect = tokio_postgres::tls::MakeTlsConnect::<Socket>::make_tls_connect(
                &mut tls,
                &self.peer.host,
            )
            .ok()?;
            self.token.cancel_query_raw(socket, connect).await.ok()
        };
        let _ = tokio::time::timeout(self.timeout, request).await;
    }
}

impl Connection {
    /// A handle that cancels this connection's running query.
    pub fn canceller(&self) -> Canceller {
        Canceller {
            token: self.client.cancel_token(),
            peer: self.peer.clone(),
            tls: self.tls.clone(),
            timeout: self.info.connect_timeout,
        }
    }

    /// Ends `stale`, an earlier session of ours on this server (see `TERMINATE_SESSION`).
    /// Best effort: a session already gone is what we want anyway.
    pub async fn end_session(&self, stale: &Backend) {
        let sql = if self.server_version_num >= 140_000 {
            TERMINATE_SESSION_WAIT
        } else {
            TERMINATE_SESSION
        };
        let _ = self.client.query(sql, &[&stale.pid, &stale.started]).await;
    }
}

/// Connects to `info` as `side`, applies pgbarge's session settings, and reads the server's
/// version and the database's identity.
pub async fn connect(info: &ConnInfo, side: Side) -> Result<Connection> {
    // What pgbarge does not read itself first; everything it reads is set on top.
    let mut config = crate::conninfo::passthrough_config(&info.passthrough)
        .map_err(|e| Error::usage(format!("connection options: {e}")).on(side))?;
    config
        .user(&info.user)
        .dbname(&info.dbname)
        .application_name(&info.application_name)
        .connect_timeout(info.connect_timeout);
    if let Some(pw) = info.password() {
        config.password(pw);
    }
    if let Some(options) = &info.options {
        config.options(options);
    }
    // TLS does not apply to Unix sockets (as in libpq).
    config.ssl_mode(if info.is_socket() {
        PgSslMode::Disable
    } else {
        match info.sslmode {
            SslMode::Disable => PgSslMode::Disable,
            SslMode::Allow | SslMode::Prefer => PgSslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => PgSslMode::Require,
        }
    });
    let tls = MakeRustlsConnect::new(tls_config(info, side)?);

    let attempt = tokio::time::timeout(info.connect_timeout, open(info, &config, &tls)).await;
    let (client, peer) = match attempt {
        Err(_) => return Err(timeout_error(info, side)),
        Ok(Err(Failed::Postgres(e))) => return Err(connect_error(info, side, e)),
        Ok(Err(Failed::Socket(e, at))) => return Err(socket_error(info, side, e, &at)),
        Ok(Ok(pair)) => pair,
    };

    // Pipelined: the settings and the questions cost one round trip together.
    let (setup, info_row) = tokio::join!(
        client.batch_execute(SESSION_SETUP),
        client.query_typed(SERVER_INFO, &[])
    );
    setup.map_err(|e| Error::postgres(Kind::Connect, side, "setting up the session", e))?;
    let row = info_row
        .map_err(|e| Error::postgres(Kind::Connect, side, "reading server information", e))?
        .into_iter()
        .next()
        .ok_or_else(|| {
            Error::new(Kind::Connect, "the server answered no server information").on(side)
        })?;
    Ok(Connection {
        server_version_num: row.get(0),
        database: row.get(1),
        database_identity: row.get(2),
        backend: Backend {
            pid: row.get(3),
            started: row.get::<_, Option<String>>(4).unwrap_or_default(),
        },
        client,
        side,
        info: info.clone(),
        peer,
        tls,
    })
}

/// Why no host of a connection string could be connected to: the last failure.
enum Failed {
    Postgres(tokio_postgres::Error),
    /// A socket could not be opened (`at`: the host and port, as given).
    Socket(std::io::Error, String),
}

/// Opens the first of `info`'s hosts (and each host's addresses, in turn) that answers
/// and logs in, as libpq does — over a socket pgbarge opens itself, so that the
/// connection reads the server through [`crate::transport::Piecewise`] (large COPY rows
/// in pieces: memory stays bounded whatever the rows), and TLS through its TLS
/// counterpart. The connection's task is spawned; `Failed` is the last host's failure.
async fn open(
    info: &ConnInfo,
    config: &tokio_postgres::Config,
    tls: &MakeRustlsConnect,
) -> std::result::Result<(Client, Peer), Failed> {
    use tokio_postgres::config::{LoadBalanceHosts, TargetSessionAttrs};
    let k = info.keepalives;
    let tcp = TcpSettings {
        keepalive: k.enabled.then_some((k.idle, k.interval, k.count)),
        user_timeout: info.tcp_user_timeout,
    };
    let mut hosts: Vec<(&String, u16)> =
        info.hosts.iter().zip(info.ports.iter().copied()).collect();
    if config.get_load_balance_hosts() == LoadBalanceHosts::Random && hosts.len() > 1 {
        let n = hosts.len();
        hosts.rotate_left((crate::retry::jitter() * n as f64) as usize % n);
    }
    let tls_asked = config.get_ssl_mode() != PgSslMode::Disable;
    let direct = config.get_ssl_negotiation() == tokio_postgres::config::SslNegotiation::Direct;
    let mut last = None;
    for (host, port) in hosts {
        let at = format!("{host}:{port}");
        let addrs: Vec<Addr> = if host.starts_with('/') {
            vec![Addr::Unix(
                std::path::Path::new(host).join(format!(".s.PGSQL.{port}")),
            )]
        } else if let Some(ip) = info.hostaddr {
            vec![Addr::Tcp(std::net::SocketAddr::new(ip, port))]
        } else {
            match tokio::net::lookup_host((host.as_str(), port)).await {
                Ok(found) => found.map(Addr::Tcp).collect(),
                Err(e) => {
                    last = Some(Failed::Socket(e, at));
                    continue;
                }
            }
        };
        for addr in addrs {
            let socket = match Socket::open(&addr, tcp).await {
                Ok(socket) => socket,
                Err(e) => {
                    last = Some(Failed::Socket(e, at.clone()));
                    continue;
                }
            };
            let stream =
                Piecewise::over_socket(socket, tls_asked && !host.starts_with('/'), direct);
            let connect = match MakeTlsConnect::<Piecewise<Socket>>::make_tls_connect(
                &mut PiecewiseTls(tls.clone()),
                host,
            ) {
                Ok(connect) => connect,
                Err(never) => match never {},
            };
            let (client, connection) = match config.connect_raw(stream, connect).await {
                Ok(pair) => pair,
                Err(e) => {
                    last = Some(Failed::Postgres(e));
                    continue;
                }
            };
            tokio::spawn(async move {
                // The error, if any, reaches the user through the next call on the client.
                let _ = connection.await;
            });
            // `target_session_attrs`, as tokio-postgres's own connect checks it.
            let wanted = config.get_target_session_attrs();
            if wanted != TargetSessionAttrs::Any {
                let read_only = match client.query_one("SHOW transaction_read_only", &[]).await {
                    Ok(row) => row.get::<_, String>(0) == "on",
                    Err(e) => {
                        last = Some(Failed::Postgres(e));
                        continue;
                    }
                };
                if read_only == (wanted == TargetSessionAttrs::ReadWrite) {
                    last = Some(Failed::Socket(
                        std::io::Error::new(
                            std::io::ErrorKind::PermissionDenied,
                            if read_only {
                                "the server is read-only (target_session_attrs=read-write)"
                            } else {
                                "the server allows writes (target_session_attrs=read-only)"
                            },
                        ),
                        at.clone(),
                    ));
                    continue;
                }
            }
            let peer = Peer {
                addr,
                host: host.clone(),
                tcp,
            };
            return Ok((client, peer));
        }
    }
    Err(last.unwrap_or_else(|| {
        Failed::Socket(
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "no host to connect to"),
            info.host_display().to_string(),
        )
    }))
}

/// The error for a socket that could not be opened at `at` (`host:port`).
fn socket_error(info: &ConnInfo, side: Side, err: std::io::Error, at: &str) -> Error {
    let found = err.kind() != std::io::ErrorKind::PermissionDenied;
    Error::new(
        Kind::Connect,
        format!(
            "{side} server: could not connect to {at} ({err}). {}",
            if found {
                "Check the host name and port, and that the server is running and accepts \
                 connections from here."
            } else {
                "Give a host that matches target_session_attrs, or change the setting."
            }
        ),
    )
    .on(side)
    .transient(found && info.hosts.iter().all(|h| !h.is_empty()))
    .caused_by(err)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_config(info: &ConnInfo, side: Side) -> Result<ClientConfig> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::new(Kind::Connect, format!("TLS setup failed: {e}")).on(side))?;
    let verifier: Arc<dyn ServerCertVerifier> = match &info.root_cert {
        None => Arc::new(NoVerification(provider)),
        Some(root) => {
            let roots = Arc::new(load_roots(root, side)?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| {
                    Error::new(Kind::Connect, format!("TLS setup failed: {e}")).on(side)
                })?;
            if info.sslmode == SslMode::VerifyFull {
                webpki
            } else {
                Arc::new(ChainOnly(webpki))
            }
        }
    };
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

fn load_roots(root: &RootCert, side: Side) -> Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    match root {
        RootCert::File(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| {
                    Error::usage(format!(
                        "cannot read the root certificate file \"{}\" (sslrootcert): {e}. \
                         Give a PEM file with your server's CA certificate(s).",
                        path.display()
                    ))
                    .on(side)
                })?;
            let (added, _) = store.add_parsable_certificates(certs);
            if added == 0 {
                return Err(Error::usage(format!(
                    "the root certificate file \"{}\" (sslrootcert) holds no usable certificate",
                    path.display()
                ))
                .on(side));
            }
        }
        RootCert::System => {
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                return Err(Error::usage(
                    "sslrootcert=system: no trusted root certificates were found on this system \
                     (install the ca-certificates package, or give sslrootcert=/path/to/ca.pem)",
                )
                .on(side));
            }
        }
    }
    Ok(store)
}

/// `sslmode=verify-ca`: the chain must lead to a trusted root, but the certificate need not
/// name the host (libpq's meaning).
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `sslmode=prefer/require` without a root certificate: encrypt, do not check who answers
/// (libpq's meaning). The handshake signatures are still verified.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn timeout_error(info: &ConnInfo, side: Side) -> Error {
    Error::new(
        Kind::Connect,
        format!(
            "{side} server: no answer from {}:{} within {} s (connect_timeout). Check the host \
             name and port, that the server is running, and that a firewall or cloud security \
             group lets this machine in.",
            info.host_display(),
            info.ports.first().copied().unwrap_or(5432),
            info.connect_timeout.as_secs()
        ),
    )
    .on(side)
    .transient(true)
}

fn connect_error(info: &ConnInfo, side: Side, err: tokio_postgres::Error) -> Error {
    use crate::error::SqlState;
    let transient_state = err.code().is_some_and(crate::error::is_transient_state);
    let detail = describe_pg(&err);
    let whom = format!("{} at {}", info.user, info.host_display());
    let (message, transient) = match err.code() {
        Some(&SqlState::INVALID_PASSWORD) => (
            format!(
                "{side} server: password authentication failed for {whom}. The password came \
                 from {}; correct it there (or in PGPASSWORD / ~/.pgpass).",
                info.password_origin()
            ),
            false,
        ),
        Some(&SqlState::INVALID_AUTHORIZATION_SPECIFICATION) => (
            format!(
                "{side} server refused {whom}: {detail}. If the server requires TLS, add \
                 sslmode=require; otherwise ask its administrator to allow this role and address."
            ),
            false,
        ),
        Some(&SqlState::INVALID_CATALOG_NAME) => (
            format!(
                "{side} server: database \"{}\" does not exist. Create it first (CREATE DATABASE) \
                 or name an existing one in the connection string.",
                info.dbname
            ),
            false,
        ),
        // Starting up, shutting down, or full: the same connection later may work.
        Some(_) => (
            format!("{side} server: connecting as {whom} failed: {detail}"),
            transient_state,
        ),
        None if detail.contains("password missing") => (
            format!(
                "{side} server asks {whom} for a password and none was given: put it in the \
                 connection string, PGPASSWORD, or ~/.pgpass."
            ),
            false,
        ),
        None if detail.contains("server does not support TLS") => (
            format!(
                "{side} server at {} does not offer TLS at all, and sslmode={} does not \
                 allow a plaintext connection. Enable ssl on that server; or, only on a \
                 network you trust end to end, connect with sslmode=prefer (or disable).",
                info.host_display(),
                info.sslmode.name()
            ),
            false,
        ),
        None if detail.contains("invalid peer certificate")
            || detail.contains("certificate")
            || detail.contains("tls")
            || detail.contains("TLS") =>
        {
            (
                format!(
                    "{side} server: the TLS check failed ({detail}). With sslmode=verify-full the \
                     certificate must be signed by a CA in sslrootcert and name the host you \
                     connect to; sslmode=verify-ca checks only the CA; sslmode=require encrypts \
                     without checking."
                ),
                false,
            )
        }
        None => (
            format!(
                "{side} server: could not connect to {}:{} ({detail}). Check the host name and \
                 port, and that the server is running and accepts TCP connections.",
                info.host_display(),
                info.ports.first().copied().unwrap_or(5432),
            ),
            true,
        ),
    };
    Error::new(Kind::Connect, message)
        .on(side)
        .transient(transient)
        .caused_by(err)
}
