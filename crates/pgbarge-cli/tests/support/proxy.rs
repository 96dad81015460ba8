//! A TCP proxy for fault tests: it forwards connections to a server untouched (TLS and
//! all) until a fault armed on it fires on the first connection that has sent more than a
//! given number of bytes towards the server — a COPY's data connection, in practice:
//!
//! - [`Fault::Reset`]: both sides of that connection are closed with a TCP RST, as a NAT
//!   or a cloud load balancer dropping the flow does;
//! - [`Fault::BlackHole`]: the connection stays open but nothing moves any more, either
//!   way (the proxy stops reading, so the sender's buffers fill), as a link that silently
//!   died does — until the proxy is dropped.
//!
//! Plain threads and blocking sockets: the tests are synchronous, and a few connections
//! need no runtime.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Reset,
    BlackHole,
}

const NORMAL: u8 = 0;
const RESET: u8 = 1;
const BLACK_HOLE: u8 = 2;

struct Conn {
    mode: AtomicU8,
    /// Bytes forwarded towards the server.
    up: AtomicU64,
    client: TcpStream,
    server: TcpStream,
}

struct Shared {
    /// Faults waiting to fire: (fault, bytes a connection must have sent first).
    armed: Mutex<Vec<(Fault, u64)>>,
    fired: AtomicUsize,
    stop: AtomicBool,
}

pub struct FaultProxy {
    pub port: u16,
    shared: Arc<Shared>,
}

impl FaultProxy {
    /// A proxy on a free loopback port forwarding to `127.0.0.1:to`.
    pub fn start(to: u16) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fault proxy");
        let port = listener.local_addr().expect("proxy address").port();
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let shared = Arc::new(Shared {
            armed: Mutex::new(Vec::new()),
            fired: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        std::thread::spawn(move || {
            while !s.stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let Ok(server) = TcpStream::connect(("127.0.0.1", to)) else {
                            continue;
                        };
                        let _ = client.set_nonblocking(false);
                        let conn = Arc::new(Conn {
                            mode: AtomicU8::new(NORMAL),
                            up: AtomicU64::new(0),
                            client,
                            server,
                        });
                        for up in [true, false] {
                            let (conn, s) = (conn.clone(), s.clone());
                            std::thread::spawn(move || forward(&conn, &s, up));
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FaultProxy { port, shared }
    }

    /// Arms `fault` to fire on the first connection that has sent more than `after`
    /// bytes towards the server. Faults fire one per connection, in the order armed.
    pub fn arm(&self, fault: Fault, after: u64) {
        self.shared
            .armed
            .lock()
            .expect("fault list")
            .push((fault, after));
    }

    /// How many armed faults have fired.
    pub fn fired(&self) -> usize {
        self.shared.fired.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
    }
}

/// Copies one direction of `conn` until it ends, a fault fires, or the proxy stops.
fn forward(conn: &Conn, shared: &Shared, up: bool) {
    let (mut from, mut to) = if up {
        (&conn.client, &conn.server)
    } else {
        (&conn.server, &conn.client)
    };
    let _ = from.set_read_timeout(Some(Duration::from_millis(50)));
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        match conn.mode.load(Ordering::SeqCst) {
            RESET => break,
            BLACK_HOLE => {
                // Open and silent: read nothing, send nothing.
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            _ => {}
        }
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                continue
            }
            Err(_) => break,
        };
        if up {
            let total = conn.up.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
            let fault = {
                let mut armed = shared.armed.lock().expect("fault list");
                match armed.first() {
                    Some(&(fault, after))
                        if total > after && conn.mode.load(Ordering::SeqCst) == NORMAL =>
                    {
                        armed.remove(0);
                        Some(fault)
                    }
                    _ => None,
                }
            };
            if let Some(fault) = fault {
                shared.fired.fetch_add(1, Ordering::SeqCst);
                match fault {
                    Fault::Reset => {
                        conn.mode.store(RESET, Ordering::SeqCst);
                        for s in [&conn.client, &conn.server] {
                            // Linger 0: the close, when both directions have let go,
                            // sends RST rather than FIN.
                            let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
                        }
                        break;
                    }
                    Fault::BlackHole => {
                        conn.mode.store(BLACK_HOLE, Ordering::SeqCst);
                        continue;
                    }
                }
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    if conn.mode.load(Ordering::SeqCst) == NORMAL {
        let _ = to.shutdown(Shutdown::Write);
    }
}
