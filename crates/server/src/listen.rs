//! The agent's HTTP/1 server loop: [`serve`] accepts connections and serves the router
//! on each under the limits of [`Limits`] (docs/security.md "HTTP limits"):
//!
//! - **Header size.** A request head larger than [`Limits::max_header_bytes`] (or with
//!   more than 100 header fields) is answered `431 Request Header Fields Too Large` and
//!   the connection is closed.
//! - **Slow heads.** A client has [`Limits::header_read_timeout`] to send a request's
//!   whole head, the wait on an idle keep-alive connection included; then the
//!   connection is closed.
//! - **Slow bodies.** A request body that brings no byte for
//!   [`Limits::body_idle_timeout`] fails the read, and the request is answered `408`
//!   `Common.RequestTimeout` (see [`is_body_timeout`]).
//! - **Connections.** At most [`Limits::max_connections`] are served at once; the next
//!   ones wait in the listen backlog.
//! - **Lingering close** (RFC 9112 §9.6). When the server closes a connection (after a
//!   431, or an answer with `Connection: close`), it first half-closes its side, then
//!   reads and discards what the client still sends, for at most [`LINGER`] and
//!   [`LINGER_BYTES`], before it lets the socket go. Closing a socket with unread bytes
//!   makes the kernel send a reset, which can fail the client's write of the rest of its
//!   request, or its read, before it has read the answer ([`Lingering`]).
//!
//! Invariant: every connection, whatever its client does, ends within
//! `header_read_timeout` of its last complete request or within `body_idle_timeout` of
//! its last body byte, plus at most [`LINGER`] of lingering close; no client holds a task
//! forever.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::Router;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;
use tower::ServiceExt as _;

/// hyper's smallest read buffer; a smaller header limit is raised to it.
const MIN_HEADER_BYTES: usize = 8192;

/// How long a closing connection drains what its client still sends.
pub const LINGER: Duration = Duration::from_secs(2);

/// How many bytes a closing connection drains at most.
pub const LINGER_BYTES: u64 = 16 << 20;

/// The connection limits of [`serve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest request head (request line and headers), in bytes (at least 8 KiB).
    pub max_header_bytes: usize,
    /// How long a client has to send a whole request head.
    pub header_read_timeout: Duration,
    /// How long a request body may go without a byte.
    pub body_idle_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

impl Default for Limits {
    /// 64 KiB of headers (an obshell auth header is about 1 KiB), 10 s for a head, 10 s
    /// without a body byte, 1,024 connections.
    fn default() -> Limits {
        Limits {
            max_header_bytes: 64 << 10,
            header_read_timeout: Duration::from_secs(10),
            body_idle_timeout: Duration::from_secs(10),
            max_connections: 1024,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting and lets
/// in-flight requests finish. Peer addresses reach the failed-auth limiter as axum's
/// `ConnectInfo<SocketAddr>`.
///
/// # Errors
/// None today: failed accepts are logged and retried, as `axum::serve` does.
///
/// # Cancel safety
/// Dropping the future drops the listener; connections already accepted finish on
/// their own tasks.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: Limits,
) -> io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(MIN_HEADER_BYTES));
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_closed) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of descriptors and the like: back off, as axum::serve does.
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let app = app.clone();
        let body_idle = limits.body_idle_timeout;
        let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            app.clone()
                .oneshot(req.map(|body| Body::new(IdleBody::new(body, body_idle))))
        });
        let io = TokioIo::new(Lingering::new(stream));
        let connection = graceful.watch(http.serve_connection(io, service));
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(%err, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// The error of a request body that went [`Limits::body_idle_timeout`] without a byte.
#[derive(Debug, thiserror::Error)]
#[error("no byte of the request body for {0:?}")]
pub struct BodyTimeout(Duration);

/// Whether `err`, or an error it wraps, is a [`BodyTimeout`].
pub fn is_body_timeout(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(err) = next {
        if err.is::<BodyTimeout>() {
            return true;
        }
        next = err.source();
    }
    false
}

/// A request body whose every frame must come within `idle` of the previous one.
struct IdleBody {
    inner: Incoming,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl IdleBody {
    fn new(inner: Incoming, idle: Duration) -> IdleBody {
        IdleBody {
            inner,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
        }
    }
}

impl HttpBody for IdleBody {
    type Data = axum::body::Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                let next = tokio::time::Instant::now() + this.idle;
                this.deadline.as_mut().reset(next);
                Poll::Ready(frame.map(|frame| frame.map_err(Into::into)))
            }
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout(this.idle))))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A connection's socket whose shutdown is a lingering close: the write side is shut
/// (the client sees the answer's end), then incoming bytes are read and dropped until
/// the client closes its side, an error, [`LINGER`] or [`LINGER_BYTES`].
struct Lingering {
    stream: tokio::net::TcpStream,
    /// Set once the write side is shut: when draining stops.
    deadline: Option<Pin<Box<Sleep>>>,
    drained: u64,
}

impl Lingering {
    fn new(stream: tokio::net::TcpStream) -> Lingering {
        Lingering {
            stream,
            deadline: None,
            drained: 0,
        }
    }
}

impl AsyncRead for Lingering {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Lingering {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.deadline.is_none() {
            std::task::ready!(Pin::new(&mut this.stream).poll_shutdown(cx))?;
            this.deadline = Some(Box::pin(tokio::time::sleep(LINGER)));
        }
        let mut scratch = [0u8; 8192];
        loop {
            let expired = match this.deadline.as_mut() {
                Some(deadline) => deadline.as_mut().poll(cx).is_ready(),
                None => true,
            };
            if expired || this.drained >= LINGER_BYTES {
                return Poll::Ready(Ok(()));
            }
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut this.stream).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => {
                    this.drained += buf.filled().len() as u64;
                }
                // The client closed its side, or the socket failed: nothing to drain.
                Poll::Ready(_) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
