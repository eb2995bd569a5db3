//! The HTTP server's limits over real sockets (`obrestore_server::listen`): a head over
//! the header limit gets its 431 (its 2 MB all sent before reading), a half-sent
//! head is closed, a client still sending after its 431 reads it whole (the lingering
//! close), a half-sent body gets 408 in the envelope, and connections over the
//! cap wait until one ends. Timeouts are short here; nothing asserts how long anything
//! took (a generous guard only keeps a broken server from hanging the test).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{agent, Options, TestAgent};
use obrestore_server::{serve, Limits};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest any step may take before the test calls the server hung.
const GUARD: Duration = Duration::from_secs(60);

struct Served {
    addr: SocketAddr,
    _agent: TestAgent,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn served(limits: Limits) -> Served {
    let test = agent(Options::default()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = test.app.clone();
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        serve(listener, app, shutdown, limits).await.unwrap();
    });
    Served {
        addr,
        _agent: test,
        _stop: stop,
    }
}

fn short_limits() -> Limits {
    Limits {
        max_header_bytes: 16 << 10,
        header_read_timeout: Duration::from_millis(300),
        body_idle_timeout: Duration::from_millis(300),
        max_connections: 64,
    }
}

/// Everything the server sends until it closes the connection.
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    tokio::time::timeout(GUARD, stream.read_to_end(&mut answer))
        .await
        .expect("the server neither answered nor closed")
        .expect("reading the answer");
    String::from_utf8_lossy(&answer).into_owned()
}

/// The envelope in an HTTP/1.1 answer.
fn envelope(answer: &str) -> Value {
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    serde_json::from_str(body).unwrap_or_else(|err| panic!("not JSON ({err}): {answer}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_over_the_limit_is_answered_431() {
    let server = served(short_limits()).await;
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    // 2 MB of one header, all sent before the client reads: the server answers after
    // the first 16 KiB and closes; the answer still reaches the client.
    let mut head = b"GET /api/v1/info HTTP/1.1\r\nHost: agent\r\nX-Big: ".to_vec();
    head.resize(head.len() + (2 << 20), b'a');
    head.extend_from_slice(b"\r\n\r\n");
    let sent = tokio::time::timeout(GUARD, write.write_all(&head)).await;
    assert!(matches!(sent, Ok(Ok(()))), "sending the head: {sent:?}");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(GUARD, read.read_to_end(&mut answer)).await;
    assert!(matches!(read, Ok(Ok(_))), "reading the answer: {read:?}");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    // The server still serves.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /api/v1/info HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = read_to_close(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// The server has answered 431 and closed its side while the client still sends its
/// head: the server drains what comes (a lingering close) instead of resetting the
/// connection, so the client's later writes succeed and it reads the 431 to the end.
/// Without the lingering close the reset fails the second write (or the read).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_still_sending_after_its_431_gets_it_whole() {
    let server = served(short_limits()).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let mut head = b"GET /api/v1/info HTTP/1.1\r\nHost: agent\r\nX-Big: ".to_vec();
    head.resize(64 << 10, b'a');
    let sent = tokio::time::timeout(GUARD, stream.write_all(&head)).await;
    assert!(
        matches!(sent, Ok(Ok(()))),
        "sending the first part: {sent:?}"
    );
    // The server answers after 16 KiB and closes its side meanwhile.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let more = vec![b'a'; 64 << 10];
    let sent = tokio::time::timeout(GUARD, stream.write_all(&more)).await;
    assert!(
        matches!(sent, Ok(Ok(()))),
        "sending after the answer: {sent:?}"
    );
    stream
        .shutdown()
        .await
        .expect("half-closing the client's side");
    let answer = read_to_close(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_head_is_closed() {
    let server = served(short_limits()).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /api/v1/info HTTP/1.1\r\nHost: ag")
        .await
        .unwrap();
    // Nothing more is sent; the server closes without an answer.
    assert_eq!(read_to_close(&mut stream).await, "");
    // An idle keep-alive connection is closed the same way, after its answer.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /api/v1/info HTTP/1.1\r\nHost: agent\r\n\r\n")
        .await
        .unwrap();
    let answer = read_to_close(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(answer.matches("HTTP/1.1").count(), 1, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_body_is_answered_408() {
    let server = served(short_limits()).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(
            b"POST /api/v1/unit/config HTTP/1.1\r\nHost: agent\r\n\
              Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"name\":",
        )
        .await
        .unwrap();
    let answer = read_to_close(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let envelope = envelope(&answer);
    assert_eq!(envelope["successful"], false, "{envelope}");
    assert_eq!(envelope["error"]["errCode"], "Common.RequestTimeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_wait_for_one_to_end() {
    let server = served(Limits {
        max_connections: 1,
        header_read_timeout: Duration::from_secs(30),
        ..short_limits()
    })
    .await;
    let mut first = TcpStream::connect(server.addr).await.unwrap();
    first
        .write_all(b"GET /api/v1/info HTTP/1.1\r\nHost: agent\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 12];
    first.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"HTTP/1.1 200");
    // The first connection is open and idle: the second is accepted by the kernel but
    // not served.
    let mut second = TcpStream::connect(server.addr).await.unwrap();
    second
        .write_all(b"GET /api/v1/info HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let early = tokio::time::timeout(Duration::from_millis(500), second.read(&mut buf)).await;
    assert!(early.is_err(), "served over the cap: {early:?}");
    drop(first);
    let answer = read_to_close(&mut second).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
