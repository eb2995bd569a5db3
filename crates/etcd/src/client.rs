//! A synchronous etcd client usable from any thread, including from inside a tokio
//! runtime: requests run on a runtime thread of the client's own, the caller blocks on
//! a std channel for the answer.
//!
//! Never call it from a task of that runtime (the election's keep-alive task talks to
//! etcd asynchronously for that reason): the one thread would wait on itself.

use std::future::Future;
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::Duration;

use etcd_client::{
    Client, Compare as PbCompare, CompareOp, ConnectOptions, GetOptions, KvClient, Txn, TxnOp,
};

/// How long one request may take before the caller gets [`EtcdError::Timeout`].
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Records read per request of a prefix scan.
const SCAN_PAGE: i64 = 512;
/// Largest answer accepted (a scan page of big records).
const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// An etcd failure. Its text names the endpoints and the key, never a value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EtcdError {
    #[error("etcd endpoint {endpoint:?} is not host:port or http://host:port")]
    InvalidEndpoint { endpoint: String },
    #[error("etcd at {endpoints}: connect: {source}")]
    Connect {
        endpoints: String,
        source: Box<etcd_client::Error>,
    },
    #[error("etcd at {endpoints}: {op} {key}: {source}")]
    Request {
        endpoints: String,
        op: &'static str,
        key: String,
        source: Box<etcd_client::Error>,
    },
    #[error("etcd at {endpoints}: {op} {key}: no answer within {timeout:?}")]
    Timeout {
        endpoints: String,
        op: &'static str,
        key: String,
        timeout: Duration,
    },
    #[error("etcd at {endpoints}: the client's runtime thread stopped")]
    Stopped { endpoints: String },
    #[error("etcd at {endpoints}: lease {lease}: {reason}")]
    Lease {
        endpoints: String,
        lease: i64,
        reason: String,
    },
}

impl EtcdError {
    /// Whether the request never reached a member (its connection could not be made),
    /// so that the client's next pick of a member may well succeed at once.
    pub fn is_unsent(&self) -> bool {
        match self {
            EtcdError::Request { source, .. } => match source.as_ref() {
                etcd_client::Error::TransportError(_) => true,
                etcd_client::Error::GRpcStatus(status) => {
                    status.code() == tonic::Code::Unavailable
                        && status.message().contains("connect")
                }
                _ => false,
            },
            _ => false,
        }
    }

    /// Whether the request failed for want of an answer (a member down, a leader
    /// election, a timeout), so that asking again may succeed; not a refusal.
    pub fn is_transient(&self) -> bool {
        use tonic::Code;
        match self {
            EtcdError::Timeout { .. } => true,
            EtcdError::Request { source, .. } => match source.as_ref() {
                etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
                etcd_client::Error::GRpcStatus(status) => matches!(
                    status.code(),
                    Code::Unavailable
                        | Code::DeadlineExceeded
                        | Code::Unknown
                        | Code::Aborted
                        | Code::Cancelled
                ),
                _ => false,
            },
            _ => false,
        }
    }
}

/// One key as etcd holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub mod_revision: i64,
    pub create_revision: i64,
}

impl From<etcd_client::KeyValue> for KeyValue {
    fn from(kv: etcd_client::KeyValue) -> Self {
        let (mod_revision, create_revision) = (kv.mod_revision(), kv.create_revision());
        let (key, value) = kv.into_key_value();
        KeyValue {
            key,
            value,
            mod_revision,
            create_revision,
        }
    }
}

/// A condition of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compare {
    /// The key does not exist.
    Absent(Vec<u8>),
    /// The key was last written at this revision.
    ModRevision(Vec<u8>, i64),
    /// The key was created at this revision (and not deleted since).
    CreateRevision(Vec<u8>, i64),
}

impl From<Compare> for PbCompare {
    fn from(compare: Compare) -> Self {
        match compare {
            Compare::Absent(key) => PbCompare::create_revision(key, CompareOp::Equal, 0),
            Compare::ModRevision(key, rev) => PbCompare::mod_revision(key, CompareOp::Equal, rev),
            Compare::CreateRevision(key, rev) => {
                PbCompare::create_revision(key, CompareOp::Equal, rev)
            }
        }
    }
}

/// A write of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
}

impl From<Op> for TxnOp {
    fn from(op: Op) -> Self {
        match op {
            Op::Put(key, value) => TxnOp::put(key, value, None),
            Op::Delete(key) => TxnOp::delete(key, None),
        }
    }
}

/// The maintainer's claim: its key and the revision that created it. A write guarded
/// by [`Fence::compare`] applies only while that very key still exists: once the
/// maintainer's lease is gone (the key deleted) or another maintainer put the key
/// again (a new create revision), the compare fails and nothing is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    key: Vec<u8>,
    create_revision: i64,
}

impl Fence {
    pub fn new(key: Vec<u8>, create_revision: i64) -> Fence {
        Fence {
            key,
            create_revision,
        }
    }

    pub fn key(&self) -> &[u8] {
        &self.key
    }

    pub fn create_revision(&self) -> i64 {
        self.create_revision
    }

    /// The condition that the claim still holds.
    pub fn compare(&self) -> Compare {
        Compare::CreateRevision(self.key.clone(), self.create_revision)
    }
}

/// A key as error texts show it (keys are ours and printable; other bytes escaped).
pub(crate) fn show_key(key: &[u8]) -> String {
    key.escape_ascii().to_string()
}

/// The first key after every key that starts with `prefix` (etcd's range end).
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Empty, or all 0xff: every key from the start.
    vec![0]
}

/// Ends the runtime thread when the last clone of the client is dropped.
struct StopRuntime(Option<tokio::sync::oneshot::Sender<()>>);

impl Drop for StopRuntime {
    fn drop(&mut self) {
        if let Some(stop) = self.0.take() {
            let _ = stop.send(());
        }
    }
}

struct Inner {
    client: Client,
    runtime: tokio::runtime::Handle,
    endpoints: String,
    _stop: StopRuntime,
}

/// A synchronous etcd client; clones share one connection and one runtime thread.
#[derive(Clone)]
pub struct Etcd {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Etcd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Etcd")
            .field("endpoints", &self.inner.endpoints)
            .finish()
    }
}

fn normalize(endpoint: &str) -> Result<String, EtcdError> {
    let invalid = || EtcdError::InvalidEndpoint {
        endpoint: endpoint.to_string(),
    };
    let rest = endpoint.strip_prefix("http://").unwrap_or(endpoint);
    let (host, port) = rest.rsplit_once(':').ok_or_else(invalid)?;
    if host.is_empty() || host.contains('/') || port.parse::<u16>().is_err() {
        return Err(invalid());
    }
    Ok(format!("http://{rest}"))
}

impl Etcd {
    /// Connects to `endpoints` ("host:port" or "http://host:port"). The connection is
    /// made lazily: an unreachable cluster shows at the first request.
    ///
    /// # Errors
    /// An endpoint that does not parse, or a client that cannot be built.
    pub fn connect(endpoints: &[String]) -> Result<Etcd, EtcdError> {
        let urls = endpoints
            .iter()
            .map(|endpoint| normalize(endpoint))
            .collect::<Result<Vec<_>, _>>()?;
        let shown = urls.join(",");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|err| EtcdError::Connect {
                endpoints: shown.clone(),
                source: Box::new(etcd_client::Error::IoError(err)),
            })?;
        let handle = runtime.handle().clone();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("etcd-client".into())
            .spawn(move || {
                runtime.block_on(async {
                    let _ = stop_rx.await;
                });
                runtime.shutdown_background();
            })
            .map_err(|err| EtcdError::Connect {
                endpoints: shown.clone(),
                source: Box::new(etcd_client::Error::IoError(err)),
            })?;
        let stop = StopRuntime(Some(stop_tx));
        let options = ConnectOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_timeout(REQUEST_TIMEOUT)
            .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2));
        let (tx, rx) = std_mpsc::sync_channel(1);
        handle.spawn(async move {
            let _ = tx.send(Client::connect(urls, Some(options)).await);
        });
        let client = match rx.recv() {
            Ok(Ok(client)) => client,
            Ok(Err(source)) => {
                return Err(EtcdError::Connect {
                    endpoints: shown,
                    source: Box::new(source),
                })
            }
            Err(_) => return Err(EtcdError::Stopped { endpoints: shown }),
        };
        Ok(Etcd {
            inner: Arc::new(Inner {
                client,
                runtime: handle,
                endpoints: shown,
                _stop: stop,
            }),
        })
    }

    /// The endpoints, as error texts name them.
    pub fn endpoints(&self) -> &str {
        &self.inner.endpoints
    }

    /// The async client and the runtime it runs on (for the election's keep-alive).
    pub(crate) fn client(&self) -> &Client {
        &self.inner.client
    }

    pub(crate) fn runtime(&self) -> &tokio::runtime::Handle {
        &self.inner.runtime
    }

    fn kv(&self) -> KvClient {
        self.inner
            .client
            .kv_client()
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// Runs `request` on the client's runtime and waits for it, at most
    /// [`REQUEST_TIMEOUT`].
    pub(crate) fn call<T, F>(
        &self,
        op: &'static str,
        key: &[u8],
        request: F,
    ) -> Result<T, EtcdError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, etcd_client::Error>> + Send + 'static,
    {
        let (tx, rx) = std_mpsc::sync_channel(1);
        self.inner.runtime.spawn(async move {
            let _ = tx.send(tokio::time::timeout(REQUEST_TIMEOUT, request).await);
        });
        let endpoints = self.inner.endpoints.clone();
        match rx.recv() {
            Ok(Ok(Ok(value))) => Ok(value),
            Ok(Ok(Err(source))) => Err(EtcdError::Request {
                endpoints,
                op,
                key: show_key(key),
                source: Box::new(source),
            }),
            Ok(Err(_elapsed)) => Err(EtcdError::Timeout {
                endpoints,
                op,
                key: show_key(key),
                timeout: REQUEST_TIMEOUT,
            }),
            Err(_) => Err(EtcdError::Stopped { endpoints }),
        }
    }

    /// Reads one key (a linearizable read).
    ///
    /// # Errors
    /// etcd unreachable, or no answer in time.
    pub fn get(&self, key: &[u8]) -> Result<Option<KeyValue>, EtcdError> {
        let mut kv = self.kv();
        let owned = key.to_vec();
        let mut answer = self.call("get", key, async move { kv.get(owned, None).await })?;
        Ok(answer.take_kvs().into_iter().next().map(KeyValue::from))
    }

    /// The cluster's current revision (it grows with every write anywhere in etcd).
    ///
    /// # Errors
    /// etcd unreachable, or no answer in time.
    pub fn revision(&self) -> Result<i64, EtcdError> {
        let mut kv = self.kv();
        let options = GetOptions::new().with_count_only();
        let answer = self.call("revision", b"", async move {
            kv.get(b"/".to_vec(), Some(options)).await
        })?;
        Ok(answer.header().map_or(0, |header| header.revision()))
    }

    /// Every key that starts with `prefix`, in key order, read in pages of one
    /// revision (a consistent snapshot however many pages it takes).
    ///
    /// # Errors
    /// etcd unreachable, no answer in time, or the first page's revision compacted
    /// away before the last page was read.
    pub fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<KeyValue>, EtcdError> {
        let end = prefix_end(prefix);
        let mut start = if prefix.is_empty() {
            vec![0]
        } else {
            prefix.to_vec()
        };
        let mut revision = 0;
        let mut out = Vec::new();
        loop {
            let mut options = GetOptions::new()
                .with_range(end.clone())
                .with_limit(SCAN_PAGE);
            if revision > 0 {
                options = options.with_revision(revision);
            }
            let mut kv = self.kv();
            let from = start.clone();
            let mut page =
                self.call(
                    "scan",
                    prefix,
                    async move { kv.get(from, Some(options)).await },
                )?;
            if revision == 0 {
                revision = page.header().map_or(0, |header| header.revision());
            }
            let more = page.more();
            let kvs = page.take_kvs();
            let Some(last) = kvs.last() else { break };
            start = last.key().to_vec();
            start.push(0);
            out.extend(kvs.into_iter().map(KeyValue::from));
            if !more {
                break;
            }
        }
        Ok(out)
    }

    /// Applies `ops` in one transaction if every compare holds. Returns whether it
    /// applied.
    ///
    /// # Errors
    /// etcd unreachable, no answer in time (the transaction may then have applied or
    /// not, never partly), or a transaction etcd refuses (too many operations, too
    /// large).
    pub fn txn(&self, compares: Vec<Compare>, ops: Vec<Op>) -> Result<bool, EtcdError> {
        let key = ops
            .first()
            .map(|op| match op {
                Op::Put(key, _) | Op::Delete(key) => key.clone(),
            })
            .unwrap_or_default();
        let txn = Txn::new()
            .when(
                compares
                    .into_iter()
                    .map(PbCompare::from)
                    .collect::<Vec<_>>(),
            )
            .and_then(ops.into_iter().map(TxnOp::from).collect::<Vec<_>>());
        let mut kv = self.kv();
        let answer = self.call("txn", &key, async move { kv.txn(txn).await })?;
        Ok(answer.succeeded())
    }
}

/// How long [`retry_transient`] asks again: long enough for an etcd member that died to
/// be skipped or a leader election to end.
pub const RETRY_FOR: Duration = Duration::from_secs(8);
const RETRY_PAUSE: Duration = Duration::from_millis(100);
const UNSENT_PAUSE: Duration = Duration::from_millis(5);

/// Runs `request` again while it fails for want of an answer
/// ([`EtcdError::is_transient`]) and [`RETRY_FOR`] has not passed. The one retry policy
/// of the crate's users (the engine's store, the cluster's records). Callers make sure
/// a request is safe to repeat: reads always are; a transaction is when applying it
/// twice leaves what applying it once leaves, or when its compares fail on a repeat.
///
/// # Errors
/// The last error: not transient, or still failing after [`RETRY_FOR`].
pub fn retry_transient<T>(
    mut request: impl FnMut() -> Result<T, EtcdError>,
) -> Result<T, EtcdError> {
    let deadline = std::time::Instant::now() + RETRY_FOR;
    loop {
        match request() {
            Err(err) if err.is_transient() && std::time::Instant::now() < deadline => {
                // A request that never left (a member that is down) goes to the next
                // member at once; anything else waits for etcd to settle.
                if err.is_unsent() {
                    tracing::debug!(error = %err, "etcd member unreachable; asking another");
                    std::thread::sleep(UNSENT_PAUSE);
                } else {
                    tracing::warn!(error = %err, "etcd request failed; retrying");
                    std::thread::sleep(RETRY_PAUSE);
                }
            }
            done => return done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_the_last_byte_below_0xff() {
        assert_eq!(prefix_end(b"/a/"), b"/a0".to_vec());
        assert_eq!(prefix_end(&[b'a', 0xff, 0xff]), b"b".to_vec());
        assert_eq!(prefix_end(&[0xff]), vec![0]);
        assert_eq!(prefix_end(b""), vec![0]);
    }

    #[test]
    fn endpoints_parse_with_or_without_scheme() {
        assert_eq!(
            normalize("127.0.0.1:2379").unwrap(),
            "http://127.0.0.1:2379"
        );
        assert_eq!(normalize("http://h:1").unwrap(), "http://h:1");
        for bad in ["", "h", "h:x", ":1", "https://h:1", "h:1/x", "h:70000"] {
            assert!(
                matches!(normalize(bad), Err(EtcdError::InvalidEndpoint { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn connect_refuses_a_bad_endpoint_without_panicking() {
        let err = Etcd::connect(&["nope".to_string()]).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
