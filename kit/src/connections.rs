//! What an accepted connection may cost before it has asked for anything: at most
//! `--max-connections` are open at once (past that a new one is closed at once), and one that
//! has not sent a complete request's headers within [`FIRST_REQUEST_TIMEOUT`] is closed. Both
//! the gRPC listener (plaintext or after the TLS handshake) and the HTTP side door accept
//! through here. Also: the open-file soft limit, raised to the hard limit at start, since each
//! connection is a file descriptor.
//!
//! "A complete request's headers" is read off the bytes as they pass, without buffering them:
//! for HTTP/2, the connection preface and then a HEADERS (or CONTINUATION) frame carrying
//! END_HEADERS; for HTTP/1, the blank line that ends the first request's head. After that the
//! connection is left alone (HTTP/2 keepalive pings find dead peers).

use std::{
    future::Future,
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    sync::{OwnedSemaphorePermit, Semaphore},
    time::Sleep,
};

/// How long a new connection may take to send its first request's headers.
pub const FIRST_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Raises this process's open-file soft limit to its hard limit (each connection, database
/// file and socket is a descriptor; an inherited soft limit of 256 or 1024 would cap
/// connections far below `--max-connections`). Returns (before, after), or `None` when the
/// limit cannot be read.
pub fn raise_open_file_limit() -> Option<(u64, u64)> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    let before = limit.current?;
    let Some(hard) = limit.maximum else {
        // No hard limit: leave the soft one (raising it to "infinity" is refused by Linux).
        return Some((before, before));
    };
    if before >= hard {
        return Some((before, before));
    }
    limit.current = Some(hard);
    match setrlimit(Resource::Nofile, limit) {
        Ok(()) => Some((before, hard)),
        Err(e) => {
            tracing::warn!(error = %e, before, hard, "cannot raise the open-file limit");
            Some((before, before))
        }
    }
}

/// The connection cap shared by a process's listeners (cheap to clone).
#[derive(Debug, Clone)]
pub struct Gate {
    open: Arc<Semaphore>,
    most: usize,
    refused: prometheus::IntCounter,
}

impl Gate {
    /// Lets at most `most` connections be open at once; `refused` counts the ones closed for
    /// want of room.
    pub fn new(most: usize, refused: prometheus::IntCounter) -> Self {
        Gate {
            open: Arc::new(Semaphore::new(most)),
            most,
            refused,
        }
    }

    /// A place for one more connection, or `None` (counted) when `most` are already open: the
    /// caller then drops the connection, which closes it.
    pub fn place(&self) -> Option<Place> {
        match self.open.clone().try_acquire_owned() {
            Ok(permit) => Some(Place { _permit: permit }),
            Err(_) => {
                self.refused.inc();
                tracing::debug!(
                    most = self.most,
                    "connection refused: --max-connections reached"
                );
                None
            }
        }
    }
}

/// One connection's place under the cap, given back when the connection closes.
#[derive(Debug)]
pub struct Place {
    _permit: OwnedSemaphorePermit,
}

impl Place {
    /// `io` holding this place, under the first-request deadline from now on.
    pub fn guard<IO>(self, io: IO) -> Guarded<IO> {
        Guarded {
            io,
            deadline: Some(Box::pin(tokio::time::sleep(FIRST_REQUEST_TIMEOUT))),
            head: Head::default(),
            _place: self,
        }
    }
}

/// The HTTP side door's listener: axum accepts through the same cap and deadline.
pub struct GatedListener {
    /// The bound socket.
    pub listener: tokio::net::TcpListener,
    /// The process's cap.
    pub gate: Gate,
}

/// Sets an accepted socket up: no delay (gRPC's small frames), TCP keepalive after `idle`.
pub fn tune(tcp: &tokio::net::TcpStream, idle: Duration) {
    let _ = tcp.set_nodelay(true);
    let _ = socket2::SockRef::from(tcp)
        .set_tcp_keepalive(&socket2::TcpKeepalive::new().with_time(idle));
}

/// The next connection on `listener`. A failed accept (out of descriptors, say) is logged
/// and retried after a pause rather than ending the server.
pub async fn accept(
    listener: &tokio::net::TcpListener,
) -> (tokio::net::TcpStream, std::net::SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(accepted) => return accepted,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

impl axum::serve::Listener for GatedListener {
    type Io = Guarded<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (tcp, addr) = accept(&self.listener).await;
            if let Some(place) = self.gate.place() {
                return (place.guard(tcp), addr);
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

/// An accepted connection holding its place under the cap, closed (its reads fail with
/// `TimedOut`) if its first request's headers do not arrive in time.
pub struct Guarded<IO> {
    io: IO,
    /// Cleared once the first request's headers are complete.
    deadline: Option<Pin<Box<Sleep>>>,
    head: Head,
    _place: Place,
}

impl<IO: AsyncRead + Unpin> AsyncRead for Guarded<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(deadline) = &mut this.deadline {
            if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no complete request headers within 10 s",
                )));
            }
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut this.io).poll_read(cx, buf);
        if this.deadline.is_some()
            && matches!(read, Poll::Ready(Ok(())))
            && this.head.feed(&buf.filled()[before..])
        {
            this.deadline = None;
        }
        read
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Guarded<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

impl<IO: tonic::transport::server::Connected> tonic::transport::server::Connected for Guarded<IO> {
    type ConnectInfo = IO::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

/// The HTTP/2 connection preface.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// HTTP/2 frame types and the flag that end a header block.
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_HEADERS: u8 = 0x4;

/// Follows the bytes a client sends until its first request's headers are complete.
#[derive(Debug, Default)]
struct Head {
    /// Bytes seen so far (only the count matters past the preface).
    seen: usize,
    /// HTTP/1 (no preface): the last bytes seen, to find `\r\n\r\n` across reads.
    tail: Vec<u8>,
    /// HTTP/2: the header of the frame being read, and how much of its payload is left.
    frame: Vec<u8>,
    left: usize,
    /// HTTP/2: the frame being read ends a header block.
    ends_headers: bool,
    http1: bool,
}

impl Head {
    /// Takes the next bytes; true once a request's headers are complete.
    fn feed(&mut self, mut bytes: &[u8]) -> bool {
        // The preface, or the first byte that is not it (HTTP/1).
        while self.seen < PREFACE.len() && !self.http1 {
            let Some((&b, rest)) = bytes.split_first() else {
                return false;
            };
            if b != PREFACE[self.seen] {
                self.http1 = true;
                self.tail = PREFACE[..self.seen].to_vec();
                break;
            }
            self.seen += 1;
            bytes = rest;
        }
        if self.http1 {
            self.tail.extend_from_slice(bytes);
            let done = self.tail.windows(4).any(|w| w == b"\r\n\r\n");
            let keep = self.tail.len().saturating_sub(3);
            self.tail.drain(..keep);
            return done;
        }
        while !bytes.is_empty() {
            if self.left > 0 {
                let n = self.left.min(bytes.len());
                self.left -= n;
                bytes = &bytes[n..];
                if self.left == 0 && self.ends_headers {
                    return true;
                }
                continue;
            }
            let n = (9 - self.frame.len()).min(bytes.len());
            self.frame.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.frame.len() < 9 {
                return false;
            }
            let length = usize::from(self.frame[0]) << 16
                | usize::from(self.frame[1]) << 8
                | usize::from(self.frame[2]);
            let (kind, flags) = (self.frame[3], self.frame[4]);
            self.ends_headers = matches!(kind, HEADERS | CONTINUATION) && flags & END_HEADERS != 0;
            self.frame.clear();
            self.left = length;
            if length == 0 && self.ends_headers {
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
        let len = payload.len();
        let mut f = vec![
            (len >> 16) as u8,
            (len >> 8) as u8,
            len as u8,
            kind,
            flags,
            0,
            0,
            0,
            1,
        ];
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn http2_headers_are_complete_at_end_headers_however_the_bytes_are_split() {
        let mut bytes = PREFACE.to_vec();
        bytes.extend(frame(0x4, 0, &[0; 12])); // SETTINGS
        bytes.extend(frame(HEADERS, 0, &[1; 20]));
        let before_end = bytes.len();
        bytes.extend(frame(CONTINUATION, END_HEADERS, &[2; 7]));
        for split in 1..bytes.len() {
            let mut head = Head::default();
            let mut done = false;
            for chunk in bytes.chunks(split) {
                done = head.feed(chunk);
                if done {
                    break;
                }
            }
            assert!(done, "split {split}");
            let mut head = Head::default();
            assert!(!head.feed(&bytes[..before_end]), "not before END_HEADERS");
        }
    }

    #[test]
    fn a_silent_or_preface_only_connection_is_not_complete() {
        let mut head = Head::default();
        assert!(!head.feed(b""));
        assert!(!head.feed(PREFACE));
        assert!(!head.feed(&frame(0x4, 0, &[])));
    }

    #[test]
    fn http1_heads_end_at_the_blank_line_even_across_reads() {
        let mut head = Head::default();
        assert!(!head.feed(b"GET /healthz HTTP/1.1\r\nHost: x\r"));
        assert!(head.feed(b"\n\r\n"));
        let mut head = Head::default();
        assert!(!head.feed(b"PRI * HTTX"), "a near-preface is HTTP/1");
        assert!(head.feed(b"\r\n\r\n"));
    }
}
