//! Maintainer election on an etcd lease.
//!
//! The maintainer key `/obrestore/<cluster>/maintainer` holds the maintainer's
//! address and is attached to its lease (TTL [`DEFAULT_TTL_SECS`]). Campaigning puts
//! the key only if it is absent; the winner's claim is the key's create revision, its
//! [`Fence`], which guards every write of its store (`store.rs`). A keep-alive task
//! renews the lease every third of the TTL; the moment a renewal fails, etcd answers
//! that the lease is gone, or the TTL passes since the last renewal was sent without
//! an answer, [`Leadership::lost`] flips and the holder must stop deciding. etcd deletes
//! the key when the lease expires, so another candidate's campaign then succeeds.
//!
//! Even a holder that does not notice in time (paused, say) cannot write: its lease is
//! gone, so the key is gone or re-created with a new create revision, and its fenced
//! commits fail.

use std::time::Duration;

use etcd_client::{
    Client, Compare as PbCompare, CompareOp, LeaseKeepAliveStream, LeaseKeeper, PutOptions, Txn,
    TxnOp,
};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use crate::client::{show_key, Etcd, EtcdError, Fence};

/// The maintainer lease's time to live.
pub const DEFAULT_TTL_SECS: i64 = 5;

/// The maintainer key of `cluster`.
pub fn maintainer_key(cluster: &str) -> Vec<u8> {
    format!("/obrestore/{cluster}/maintainer").into_bytes()
}

/// One candidate for maintainer of a cluster.
#[derive(Debug, Clone)]
pub struct Election {
    etcd: Etcd,
    key: Vec<u8>,
    address: String,
    ttl_secs: i64,
}

impl Election {
    /// A candidate of `cluster` announcing `address` (where agents reach it).
    ///
    /// # Errors
    /// A cluster name that cannot be part of a key.
    pub fn new(
        etcd: Etcd,
        cluster: &str,
        address: impl Into<String>,
    ) -> Result<Election, obrestore_dag::StoreError> {
        crate::store::check_cluster_name(cluster)?;
        Ok(Election {
            etcd,
            key: maintainer_key(cluster),
            address: address.into(),
            ttl_secs: DEFAULT_TTL_SECS,
        })
    }

    /// Another lease TTL, in whole seconds (at least 1; etcd may raise a very short TTL
    /// to its own minimum).
    pub fn with_ttl(mut self, ttl: Duration) -> Election {
        self.ttl_secs = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX).max(1);
        self
    }

    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The current maintainer's address, if there is one.
    ///
    /// # Errors
    /// etcd unreachable.
    pub fn leader(&self) -> Result<Option<String>, EtcdError> {
        let found = self.etcd.get(&self.key)?;
        Ok(found.map(|kv| String::from_utf8_lossy(&kv.value).into_owned()))
    }

    /// One attempt: becomes maintainer if there is none. `None` if another holds it.
    ///
    /// # Errors
    /// etcd unreachable, or the lease could not be granted.
    pub fn campaign(&self) -> Result<Option<Leadership>, EtcdError> {
        let mut client = self.etcd.client().clone();
        let ttl = self.ttl_secs;
        let grant = self.etcd.call("lease grant", &self.key, async move {
            client.lease_grant(ttl, None).await
        })?;
        let lease = grant.id();
        // The lease runs from (at the latest) now: the local expiry is conservative.
        let granted_at = Instant::now();
        let ttl = Duration::from_secs(u64::try_from(grant.ttl()).unwrap_or(1).max(1));
        let txn = Txn::new()
            .when(vec![PbCompare::create_revision(
                self.key.clone(),
                CompareOp::Equal,
                0,
            )])
            .and_then(vec![TxnOp::put(
                self.key.clone(),
                self.address.clone(),
                Some(PutOptions::new().with_lease(lease)),
            )]);
        let mut kv = self.etcd.client().kv_client();
        let answer = self
            .etcd
            .call("campaign", &self.key, async move { kv.txn(txn).await })?;
        if !answer.succeeded() {
            self.revoke(lease);
            return Ok(None);
        }
        // The put is the transaction's only write: its revision created the key.
        let create_revision = answer
            .header()
            .map(|header| header.revision())
            .ok_or_else(|| EtcdError::Lease {
                endpoints: self.etcd.endpoints().to_string(),
                lease,
                reason: format!(
                    "campaign on {} answered without a revision",
                    show_key(&self.key)
                ),
            })?;
        let (lost_tx, lost) = watch::channel(false);
        let (stop_tx, stop_rx) = oneshot::channel();
        self.etcd.runtime().spawn(keep_alive(
            self.etcd.client().clone(),
            lease,
            ttl,
            granted_at,
            lost_tx,
            stop_rx,
        ));
        Ok(Some(Leadership {
            etcd: self.etcd.clone(),
            fence: Fence::new(self.key.clone(), create_revision),
            lease,
            lost,
            stop: Some(stop_tx),
        }))
    }

    /// Campaigns every `poll` until this candidate is maintainer or `give_up` passes.
    ///
    /// # Errors
    /// As [`Election::campaign`], for the last attempt, when it failed.
    pub fn campaign_until(
        &self,
        poll: Duration,
        give_up: Duration,
    ) -> Result<Option<Leadership>, EtcdError> {
        let deadline = std::time::Instant::now() + give_up;
        loop {
            let attempt = self.campaign();
            match attempt {
                Ok(Some(won)) => return Ok(Some(won)),
                Ok(None) | Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(poll);
                }
                other => return other,
            }
        }
    }

    fn revoke(&self, lease: i64) {
        let mut client = self.etcd.client().clone();
        let _ = self.etcd.call("lease revoke", &self.key, async move {
            client.lease_revoke(lease).await
        });
    }
}

/// What one renewal learnt.
enum Renewal {
    /// etcd renewed the lease for this many seconds.
    Renewed(u64),
    /// etcd says the lease is gone.
    Gone,
}

type KeepAlive = (LeaseKeeper, LeaseKeepAliveStream);

/// One renewal on the keep-alive stream, opening it first if there is none (opening
/// renews too).
async fn renew(
    client: &Client,
    stream: &mut Option<KeepAlive>,
    lease: i64,
    ttl: u64,
) -> Result<Renewal, etcd_client::Error> {
    let Some((keeper, answers)) = stream else {
        return match client.lease_client().keep_alive(lease).await {
            Ok(opened) => {
                *stream = Some(opened);
                Ok(Renewal::Renewed(ttl))
            }
            Err(etcd_client::Error::LeaseKeepAliveError(_)) => Ok(Renewal::Gone),
            Err(err) => Err(err),
        };
    };
    keeper.keep_alive().await?;
    match answers.message().await? {
        Some(answer) if answer.ttl() > 0 => {
            Ok(Renewal::Renewed(u64::try_from(answer.ttl()).unwrap_or(0)))
        }
        Some(_) => Ok(Renewal::Gone),
        None => Err(etcd_client::Error::LeaseKeepAliveError(
            "keep-alive stream ended".into(),
        )),
    }
}

/// Renews the lease every third of its TTL until told to stop. A renewal that gets no
/// answer (a member down, a leader election) is tried again every 200 ms; `lost`
/// flips when etcd says the lease is gone or when the TTL has passed since the last
/// renewal that was answered was sent.
async fn keep_alive(
    client: Client,
    lease: i64,
    ttl: Duration,
    granted_at: Instant,
    lost: watch::Sender<bool>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut expiry = granted_at + ttl;
    let mut stream = None;
    let mut pause = ttl / 3;
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(pause) => {}
        }
        let sent = Instant::now();
        let renewal = tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep_until(expiry) => Ok(Renewal::Gone),
            renewal = renew(&client, &mut stream, lease, ttl.as_secs()) => renewal,
        };
        match renewal {
            Ok(Renewal::Renewed(secs)) if secs > 0 => {
                expiry = sent + Duration::from_secs(secs);
                pause = ttl / 3;
            }
            Ok(_) => {
                tracing::warn!(lease, "maintainer lease lost");
                let _ = lost.send(true);
                return;
            }
            Err(err) => {
                tracing::warn!(lease, error = %err, "maintainer lease renewal failed; retrying");
                stream = None;
                pause = Duration::from_millis(200);
            }
        }
    }
}

/// The maintainer's claim while it holds it.
#[derive(Debug)]
pub struct Leadership {
    etcd: Etcd,
    fence: Fence,
    lease: i64,
    lost: watch::Receiver<bool>,
    stop: Option<oneshot::Sender<()>>,
}

impl Leadership {
    /// The fence that guards the maintainer's store.
    pub fn fence(&self) -> Fence {
        self.fence.clone()
    }

    pub fn lease(&self) -> i64 {
        self.lease
    }

    /// Whether the lease is still held, as far as this process knows.
    pub fn is_held(&self) -> bool {
        !*self.lost.borrow()
    }

    /// Turns `true` the moment the lease is lost; `changed().await` to be told.
    pub fn lost(&self) -> watch::Receiver<bool> {
        self.lost.clone()
    }

    /// Gives the claim up: stops renewing and revokes the lease, which deletes the key
    /// so another candidate can win at once.
    ///
    /// # Errors
    /// etcd unreachable (the lease then expires within its TTL).
    pub fn resign(mut self) -> Result<(), EtcdError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let mut client = self.etcd.client().clone();
        let lease = self.lease;
        self.etcd
            .call("lease revoke", self.fence.key(), async move {
                client.lease_revoke(lease).await
            })
            .map(|_| ())
    }
}

impl Drop for Leadership {
    /// Stops renewing; the lease expires within its TTL (use [`Leadership::resign`] to
    /// hand over at once).
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
