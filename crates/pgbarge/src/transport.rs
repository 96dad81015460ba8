//! The byte stream under every connection: a socket pgbarge opens itself, and a filter
//! that cuts the server's large `CopyData` messages into pieces.
//!
//! A row of COPY output is one `CopyData` message, and tokio-postgres reads a message
//! whole before handing it on: its read buffer grows (by doubling, copying as it goes)
//! to the size of the largest row, and a few whole rows can sit in its queues — one
//! 50 MB value took 211 MB. [`Piecewise`] sits under tokio-postgres and re-frames each
//! `CopyData` longer than [`PIECE`] as several of at most [`PIECE`] bytes: COPY's bytes
//! are a stream whose message boundaries mean nothing (the pump passes them on as they
//! come, and `COPY … FROM STDIN` accepts them cut anywhere), so nothing above notices,
//! and a connection holds at most a piece at a time, whatever the rows.
//!
//! The filter must see the protocol in the clear: on a TLS connection it sits above
//! TLS ([`PiecewiseTls`] wraps the TLS stream), on a plain one above the socket. A plain
//! socket over which TLS is asked for first passes the server's one-byte answer, then
//! either frames (no TLS) or steps aside for good (TLS: the filter above it does the
//! work).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

/// The most bytes of COPY data one message carries up from the filter.
pub const PIECE: usize = 256 * 1024;

/// Bytes read from below at once.
const READ_SIZE: usize = 64 * 1024;

/// Where a server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addr {
    Tcp(SocketAddr),
    /// A Unix socket file (`DIR/.s.PGSQL.PORT`).
    Unix(PathBuf),
}

/// TCP settings of a socket (see [`crate::conninfo::Keepalives`]).
#[derive(Debug, Clone, Copy)]
pub struct TcpSettings {
    /// Keepalive probes: idle time, interval and count; `None` for none.
    pub keepalive: Option<(Duration, Duration, u32)>,
    pub user_timeout: Option<Duration>,
}

/// A socket pgbarge opened: TCP or Unix.
#[derive(Debug)]
pub enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Socket {
    /// Opens a socket to `addr`, with `tcp`'s settings for TCP.
    pub async fn open(addr: &Addr, tcp: TcpSettings) -> io::Result<Socket> {
        match addr {
            Addr::Unix(path) => Ok(Socket::Unix(UnixStream::connect(path).await?)),
            Addr::Tcp(addr) => {
                let stream = TcpStream::connect(addr).await?;
                stream.set_nodelay(true)?;
                let sock = socket2::SockRef::from(&stream);
                if let Some((idle, interval, count)) = tcp.keepalive {
                    sock.set_tcp_keepalive(
                        &socket2::TcpKeepalive::new()
                            .with_time(idle)
                            .with_interval(interval)
                            .with_retries(count),
                    )?;
                }
                if let Some(timeout) = tcp.user_timeout {
                    sock.set_tcp_user_timeout(Some(timeout))?;
                }
                Ok(Socket::Tcp(stream))
            }
        }
    }
}

impl AsyncRead for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Socket::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Socket::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_flush(cx),
            Socket::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Socket::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// What the filter does with the bytes coming up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The next byte is the server's answer to the client's request for TLS: `S` (TLS
    /// follows: step aside), `N` (no TLS: frame), or the start of an error message.
    SslAnswer,
    /// Read the protocol's messages, cutting large `CopyData`.
    Framing,
    /// Pass everything through (TLS bytes, read by the layer above).
    Through,
}

/// Where the filter is within the message being passed up.
#[derive(Debug, Clone, Copy)]
enum At {
    /// Reading a message's header (type and length); `have` bytes of it so far.
    Header { have: usize },
    /// Passing `left` bytes of a message's body through unchanged.
    Body { left: usize },
    /// Passing a large `CopyData` body on in pieces: `left` bytes of the body remain,
    /// `piece` of them in the current piece (0: its header is still to be written).
    Split { left: usize, piece: usize },
}

/// A stream whose large `CopyData` messages from the server are cut into pieces of at
/// most [`PIECE`] bytes (see the module's documentation). What the client writes passes
/// through unchanged.
pub struct Piecewise<S> {
    inner: S,
    mode: Mode,
    at: At,
    input: Box<[u8]>,
    start: usize,
    end: usize,
    header: [u8; 5],
    /// A header waiting to go up: `out[out_pos..out_len]`.
    out: [u8; 5],
    out_pos: usize,
    out_len: usize,
}

impl<S> Piecewise<S> {
    /// Over a socket: `tls_asked` if the client will ask the server for TLS first (the
    /// answer is one unframed byte); `direct` if TLS starts at once (PostgreSQL 17's
    /// `sslnegotiation=direct`), when the filter steps aside.
    pub fn over_socket(inner: S, tls_asked: bool, direct: bool) -> Self {
        let mode = if direct {
            Mode::Through
        } else if tls_asked {
            Mode::SslAnswer
        } else {
            Mode::Framing
        };
        Self::new(inner, mode)
    }

    /// Over a TLS stream, whose bytes are the protocol in the clear.
    pub fn over_tls(inner: S) -> Self {
        Self::new(inner, Mode::Framing)
    }

    fn new(inner: S, mode: Mode) -> Self {
        Piecewise {
            inner,
            mode,
            at: At::Header { have: 0 },
            input: vec![0; READ_SIZE].into_boxed_slice(),
            start: 0,
            end: 0,
            header: [0; 5],
            out: [0; 5],
            out_pos: 0,
            out_len: 0,
        }
    }

    /// Queues a header to go up before any other byte.
    fn emit_header(&mut self, header: [u8; 5]) {
        self.out = header;
        self.out_pos = 0;
        self.out_len = 5;
    }

    /// Moves what the message state allows from the input to `buf`. Returns whether it
    /// consumed or produced anything.
    fn step(&mut self, buf: &mut ReadBuf<'_>) -> bool {
        let available = self.end - self.start;
        match self.at {
            At::Header { have } => {
                let n = (5 - have).min(available);
                self.header[have..have + n]
                    .copy_from_slice(&self.input[self.start..self.start + n]);
                self.start += n;
                let have = have + n;
                if have < 5 {
                    self.at = At::Header { have };
                    return n > 0;
                }
                let [tag, a, b, c, d] = self.header;
                let body = (u32::from_be_bytes([a, b, c, d]) as usize).saturating_sub(4);
                if tag == b'd' && body > PIECE {
                    self.at = At::Split {
                        left: body,
                        piece: 0,
                    };
                } else {
                    self.emit_header(self.header);
                    self.at = if body == 0 {
                        At::Header { have: 0 }
                    } else {
                        At::Body { left: body }
                    };
                }
                true
            }
            At::Body { left } => {
                let n = left.min(available).min(buf.remaining());
                buf.put_slice(&self.input[self.start..self.start + n]);
                self.start += n;
                self.at = if left == n {
                    At::Header { have: 0 }
                } else {
                    At::Body { left: left - n }
                };
                n > 0
            }
            At::Split { left, piece: 0 } => {
                let piece = left.min(PIECE);
                let [a, b, c, d] = ((piece + 4) as u32).to_be_bytes();
                self.emit_header([b'd', a, b, c, d]);
                self.at = At::Split { left, piece };
                true
            }
            At::Split { left, piece } => {
                let n = piece.min(available).min(buf.remaining());
                buf.put_slice(&self.input[self.start..self.start + n]);
                self.start += n;
                self.at = if left == n {
                    At::Header { have: 0 }
                } else {
                    At::Split {
                        left: left - n,
                        piece: piece - n,
                    }
                };
                n > 0
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Piecewise<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.mode == Mode::Through && this.start == this.end {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        let before = buf.filled().len();
        loop {
            // A queued header goes first.
            if this.out_pos < this.out_len {
                let n = (this.out_len - this.out_pos).min(buf.remaining());
                buf.put_slice(&this.out[this.out_pos..this.out_pos + n]);
                this.out_pos += n;
                if buf.remaining() == 0 {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            if buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            if this.start == this.end {
                if buf.filled().len() > before {
                    // Hand on what there is rather than wait for more.
                    return Poll::Ready(Ok(()));
                }
                let mut read = ReadBuf::new(&mut this.input);
                ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
                let n = read.filled().len();
                (this.start, this.end) = (0, n);
                if n == 0 {
                    return Poll::Ready(Ok(())); // the end of the stream
                }
            }
            match this.mode {
                Mode::SslAnswer => {
                    let answer = this.input[this.start];
                    if answer == b'S' || answer == b'N' {
                        buf.put_slice(&[answer]);
                        this.start += 1;
                    }
                    // Anything else is an error message's first byte: framed.
                    this.mode = if answer == b'S' {
                        Mode::Through
                    } else {
                        Mode::Framing
                    };
                }
                Mode::Through => {
                    let n = (this.end - this.start).min(buf.remaining());
                    buf.put_slice(&this.input[this.start..this.start + n]);
                    this.start += n;
                }
                Mode::Framing => {
                    this.step(buf);
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Piecewise<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl<S: TlsStream + Unpin> TlsStream for Piecewise<S> {
    fn channel_binding(&self) -> ChannelBinding {
        self.inner.channel_binding()
    }
}

/// A TLS connector whose streams are [`Piecewise`] above TLS.
#[derive(Clone)]
pub struct PiecewiseTls<M>(pub M);

impl<M, S> MakeTlsConnect<S> for PiecewiseTls<M>
where
    M: MakeTlsConnect<S>,
    M::TlsConnect: Send + 'static,
    <M::TlsConnect as TlsConnect<S>>::Future: Send + 'static,
    M::Stream: Send + 'static,
    S: Send + 'static,
{
    type Stream = Piecewise<M::Stream>;
    type TlsConnect = PiecewiseConnect<M::TlsConnect>;
    type Error = M::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<Self::TlsConnect, Self::Error> {
        self.0.make_tls_connect(domain).map(PiecewiseConnect)
    }
}

/// See [`PiecewiseTls`].
pub struct PiecewiseConnect<T>(T);

impl<T, S> TlsConnect<S> for PiecewiseConnect<T>
where
    T: TlsConnect<S> + Send + 'static,
    T::Future: Send + 'static,
    T::Stream: Send + 'static,
    S: Send + 'static,
{
    type Stream = Piecewise<T::Stream>;
    type Error = T::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Stream, Self::Error>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        let handshake = self.0.connect(stream);
        Box::pin(async move { Ok(Piecewise::over_tls(handshake.await?)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    fn message(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![tag];
        m.extend(((body.len() + 4) as u32).to_be_bytes());
        m.extend(body);
        m
    }

    /// Reads `input` through the filter in reads of `chunk` bytes at most.
    async fn through(input: Vec<u8>, mode: Mode, chunk: usize) -> Vec<u8> {
        let mut filter = Piecewise::new(std::io::Cursor::new(input), mode);
        let mut out = Vec::new();
        let mut buf = vec![0; chunk];
        loop {
            let n = filter.read(&mut buf).await.expect("reads");
            if n == 0 {
                return out;
            }
            out.extend(&buf[..n]);
        }
    }

    /// The messages in `bytes`: (tag, body).
    fn messages(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let len = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
            out.push((bytes[0], bytes[5..1 + len].to_vec()));
            bytes = &bytes[1 + len..];
        }
        out
    }

    #[tokio::test]
    async fn large_copy_data_is_cut_into_pieces_and_nothing_else_changes() {
        let big: Vec<u8> = (0..(PIECE * 2 + 1000)).map(|i| (i % 251) as u8).collect();
        let mut input = message(b'H', &[0, 0, 0]);
        input.extend(message(b'd', b"small row\n"));
        input.extend(message(b'd', &big));
        input.extend(message(b'c', b""));
        input.extend(message(b'Z', b"I"));
        for chunk in [7, 4096, 1 << 20] {
            let out = through(input.clone(), Mode::Framing, chunk).await;
            let got = messages(&out);
            let tags: Vec<u8> = got.iter().map(|(t, _)| *t).collect();
            assert_eq!(tags, b"HddddcZ".to_vec(), "read by {chunk}");
            assert!(got.iter().all(|(_, b)| b.len() <= PIECE));
            let data: Vec<u8> = got[2..5].iter().flat_map(|(_, b)| b.clone()).collect();
            assert_eq!(data, big, "the bytes, in order");
        }
    }

    #[tokio::test]
    async fn the_answer_to_a_tls_request_passes_then_framing_or_nothing() {
        let big = vec![7u8; PIECE + 1];
        let mut plain = vec![b'N'];
        plain.extend(message(b'd', &big));
        let out = through(plain, Mode::SslAnswer, 1 << 20).await;
        assert_eq!(out[0], b'N');
        assert_eq!(messages(&out[1..]).len(), 2, "framed after N");
        let mut tls = vec![b'S'];
        tls.extend(message(b'd', &big));
        let out = through(tls.clone(), Mode::SslAnswer, 1 << 20).await;
        assert_eq!(out, tls, "untouched after S");
    }
}
