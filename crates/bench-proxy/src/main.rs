//! `latency-proxy`: a TCP proxy that makes a loopback connection behave like a long
//! internet path, for the benchmark's "simulated cloud link".
//!
//! Each direction of each connection delays every byte by `--delay-ms` and allows at most
//! `--window` bytes in flight (read from one side, not yet delivered to the other). That
//! caps one connection at about window / delay (64 KiB / 10 ms ≈ 6.4 MB/s), the way a TCP
//! window over a long round trip caps one stream — which is what parallel streams are for.
//!
//!     latency-proxy --listen 127.0.0.1:6000 --to 127.0.0.1:5432 [--delay-ms 10] [--window 65536]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;

struct Options {
    listen: SocketAddr,
    to: SocketAddr,
    delay: Duration,
    window: usize,
}

fn usage() -> ! {
    eprintln!(
        "usage: latency-proxy --listen ADDR:PORT --to ADDR:PORT [--delay-ms 10] [--window 65536]"
    );
    std::process::exit(2);
}

fn parse() -> Options {
    let mut listen = None;
    let mut to = None;
    let mut delay = Duration::from_millis(10);
    let mut window = 64 * 1024;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--listen" => listen = value.parse().ok(),
            "--to" => to = value.parse().ok(),
            "--delay-ms" => {
                delay = Duration::from_millis(value.parse().unwrap_or_else(|_| usage()))
            }
            "--window" => window = value.parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    match (listen, to) {
        (Some(listen), Some(to)) if window > 0 => Options {
            listen,
            to,
            delay,
            window,
        },
        _ => usage(),
    }
}

/// One direction: read, hold each chunk for `delay`, write; at most `window` bytes held.
async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delay: Duration, window: usize) {
    let credit = Arc::new(Semaphore::new(window));
    let (tx, mut rx) =
        mpsc::unbounded_channel::<(Instant, Vec<u8>, tokio::sync::OwnedSemaphorePermit)>();
    let reader = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            // Wait for window space before reading, as a sender waits for acknowledgements.
            let Ok(permit) = credit.clone().acquire_many_owned(1).await else {
                break;
            };
            drop(permit);
            let room = credit.available_permits().clamp(1, buf.len());
            let n = match from.read(&mut buf[..room]).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let Ok(permit) = credit.clone().acquire_many_owned(n as u32).await else {
                break;
            };
            if tx
                .send((Instant::now() + delay, buf[..n].to_vec(), permit))
                .is_err()
            {
                break;
            }
        }
    };
    let writer = async move {
        while let Some((due, bytes, permit)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&bytes).await.is_err() {
                break;
            }
            drop(permit);
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}

async fn serve(client: TcpStream, options: Arc<Options>) {
    let Ok(server) = TcpStream::connect(options.to).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    tokio::join!(
        pipe(cr, sw, options.delay, options.window),
        pipe(sr, cw, options.delay, options.window)
    );
}

#[tokio::main]
async fn main() {
    let options = Arc::new(parse());
    let listener = match TcpListener::bind(options.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("latency-proxy: cannot listen on {}: {e}", options.listen);
            std::process::exit(1);
        }
    };
    loop {
        match listener.accept().await {
            Ok((client, _)) => {
                tokio::spawn(serve(client, options.clone()));
            }
            Err(e) => eprintln!("latency-proxy: accept failed: {e}"),
        }
    }
}
