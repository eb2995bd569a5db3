//! obshell's "API hybrid encryption" (SPEC §3): the agent's RSA key, the v2 headers
//! `X-OCS-Header` and `X-OCS-Agent-Header`, AES-128-CBC request bodies, and the
//! failed-auth limiter that guards the RSA decryption (see `docs/security.md`). Like
//! obshell (`/api/v1/info` lists `supportedAuth: ["v2"]`), the agent no longer accepts
//! the v1 header `X-OCS-Auth`.
//!
//! Both sides live here so that the server and the CLI client share one implementation:
//! [`Authenticator`] verifies, [`ClientCredentials`] produces headers and bodies.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use obrestore_dag::Clock;
use obrestore_restore::Secret;
use rand::RngCore;
use rsa::pkcs1::{
    DecodeRsaPrivateKey, DecodeRsaPublicKey, EncodeRsaPrivateKey, EncodeRsaPublicKey, LineEnding,
};
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Encrypt, RsaPrivateKey, RsaPublicKey};
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

/// The v2 header (RSA-encrypted JSON with password, expiry, URI and the body key).
pub const HEADER_V2: &str = "X-OCS-Header";
/// The v2 header obshell's SDKs send with the agent password (same format).
pub const HEADER_AGENT_V2: &str = "X-OCS-Agent-Header";
/// The v1 header, which obshell (and this agent) no longer accepts: a request that
/// carries only it is unauthenticated.
pub const HEADER_V1: &str = "X-OCS-Auth";
/// File name of the agent's RSA private key (PKCS#1 PEM, mode 0600) in the data dir.
pub const KEY_FILE: &str = "api_rsa_key.pem";
/// Size of a generated agent key.
pub const KEY_BITS: usize = 2048;
/// Smallest key accepted when loading one (SPEC §3: 1024 bits or larger).
pub const MIN_KEY_BITS: usize = 1024;
/// PKCS#1 v1.5 encryption overhead per chunk.
const PKCS1_OVERHEAD: usize = 11;

type Aes128CbcEnc = cbc::Encryptor<aes::Aes128>;
type Aes128CbcDec = cbc::Decryptor<aes::Aes128>;

/// Why the agent key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    #[error("agent key file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("agent key file {path} is not a PKCS#1 RSA private key: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("agent key is {bits} bits; at least {MIN_KEY_BITS} are required")]
    TooSmall { bits: usize },
    #[error("generating the agent key failed: {0}")]
    Generate(String),
}

/// The agent's RSA key pair.
pub struct AgentKey {
    private: RsaPrivateKey,
    public_base64: String,
}

impl std::fmt::Debug for AgentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentKey")
            .field("bits", &(self.private.size() * 8))
            .finish_non_exhaustive()
    }
}

impl AgentKey {
    /// Wraps a private key.
    ///
    /// # Errors
    /// [`KeyError::TooSmall`] under 1024 bits.
    pub fn from_private(private: RsaPrivateKey) -> Result<AgentKey, KeyError> {
        let bits = private.size() * 8;
        if bits < MIN_KEY_BITS {
            return Err(KeyError::TooSmall { bits });
        }
        let der = private
            .to_public_key()
            .to_pkcs1_der()
            .map_err(|err| KeyError::Generate(err.to_string()))?;
        Ok(AgentKey {
            public_base64: B64.encode(der.as_bytes()),
            private,
        })
    }

    /// A fresh key of `bits` bits.
    ///
    /// # Errors
    /// [`KeyError::Generate`].
    pub fn generate(bits: usize) -> Result<AgentKey, KeyError> {
        let private = RsaPrivateKey::new(&mut rand::rngs::OsRng, bits)
            .map_err(|err| KeyError::Generate(err.to_string()))?;
        AgentKey::from_private(private)
    }

    /// Parses a PKCS#1 PEM private key.
    ///
    /// # Errors
    /// [`KeyError::Invalid`], [`KeyError::TooSmall`].
    pub fn from_pkcs1_pem(pem: &str) -> Result<AgentKey, KeyError> {
        let private = RsaPrivateKey::from_pkcs1_pem(pem).map_err(|err| KeyError::Invalid {
            path: PathBuf::new(),
            reason: err.to_string(),
        })?;
        AgentKey::from_private(private)
    }

    /// Loads `<data_dir>/api_rsa_key.pem`, or generates a [`KEY_BITS`] key and writes it
    /// there with mode 0600 (atomically: temp file, fsync, rename) on first start.
    ///
    /// # Errors
    /// I/O errors, an unparsable or too small key file.
    pub fn load_or_generate(data_dir: &Path) -> Result<AgentKey, KeyError> {
        let path = data_dir.join(KEY_FILE);
        let io = |source| KeyError::Io {
            path: path.clone(),
            source,
        };
        match fs::read_to_string(&path) {
            Ok(pem) => {
                return AgentKey::from_pkcs1_pem(&pem).map_err(|err| match err {
                    KeyError::Invalid { reason, .. } => KeyError::Invalid {
                        path: path.clone(),
                        reason,
                    },
                    other => other,
                })
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(io(err)),
        }
        let key = AgentKey::generate(KEY_BITS)?;
        let pem = key
            .private
            .to_pkcs1_pem(LineEnding::LF)
            .map_err(|err| KeyError::Generate(err.to_string()))?;
        // A temporary file of this process's own, linked (never renamed) into place: when
        // agents of a cluster start at once on one shared directory, the first link wins
        // and every other agent reads the winner's key.
        let tmp = data_dir.join(format!("{KEY_FILE}.{}.tmp", std::process::id()));
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp).map_err(io)?;
        file.write_all(pem.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        drop(file);
        let linked = fs::hard_link(&tmp, &path);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                return AgentKey::load_or_generate(data_dir);
            }
            Err(err) => return Err(io(err)),
        }
        if let Ok(dir) = fs::File::open(data_dir) {
            let _ = dir.sync_all();
        }
        Ok(key)
    }

    /// Base64 of the PKCS#1 DER public key (`GET /api/v1/secret`).
    pub fn public_key_base64(&self) -> &str {
        &self.public_base64
    }

    /// The public half.
    pub fn public_key(&self) -> RsaPublicKey {
        self.private.to_public_key()
    }

    /// Decrypts `data` block by block (each block is one key-sized PKCS#1 v1.5
    /// ciphertext) and concatenates the plaintexts. Uses blinding. Every failure is the
    /// same `None`, so callers cannot tell padding errors apart.
    fn decrypt_chunked(&self, data: &[u8]) -> Option<Vec<u8>> {
        let size = self.private.size();
        if data.is_empty() || data.len() % size != 0 {
            return None;
        }
        let mut out = Vec::with_capacity(data.len());
        let mut failed = false;
        for block in data.chunks(size) {
            // Decrypt every block even after a failure so the work does not depend on
            // which block was bad.
            match self
                .private
                .decrypt_blinded(&mut rand::rngs::OsRng, Pkcs1v15Encrypt, block)
            {
                Ok(plain) => out.extend_from_slice(&plain),
                Err(_) => failed = true,
            }
        }
        (!failed).then_some(out)
    }
}

/// Encrypts `plain` for `public` in chunks of `k - 11` bytes (PKCS#1 v1.5) and returns
/// the base64 of the concatenated ciphertexts, as obshell's clients do.
///
/// # Errors
/// The RSA library refused (cannot happen for chunks of the right size).
pub fn encrypt_chunked(public: &RsaPublicKey, plain: &[u8]) -> Result<String, rsa::Error> {
    let chunk = public.size() - PKCS1_OVERHEAD;
    let mut out = Vec::new();
    for block in plain.chunks(chunk.max(1)) {
        out.extend(public.encrypt(&mut rand::rngs::OsRng, Pkcs1v15Encrypt, block)?);
    }
    Ok(B64.encode(out))
}

/// Parses the base64 PKCS#1 DER public key of `GET /api/v1/secret` (an X.509
/// SubjectPublicKeyInfo is accepted too).
///
/// # Errors
/// A message when it is not base64 or not an RSA public key.
pub fn parse_public_key(base64: &str) -> Result<RsaPublicKey, String> {
    let der = B64
        .decode(base64.trim())
        .map_err(|err| format!("public key is not base64: {err}"))?;
    RsaPublicKey::from_pkcs1_der(&der)
        .or_else(|_| rsa::pkcs8::DecodePublicKey::from_public_key_der(&der))
        .map_err(|err| format!("not an RSA public key: {err}"))
}

/// Why a request was not authenticated. The `Display` text is what the client sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    #[error("Authentication failed: header X-OCS-Header is missing")]
    Missing,
    #[error("decrypt auth header failed")]
    DecryptFailed,
    #[error("auth header expired at {expiry} (now {now})")]
    Expired { expiry: i64, now: i64 },
    #[error("auth header was issued for uri '{header}', but the request uri is '{request}'")]
    UriMismatch { header: String, request: String },
    #[error("incorrect password")]
    WrongPassword,
    #[error("request body could not be decrypted with the key of the auth header")]
    BodyDecryptFailed,
    #[error("too many failed authentication attempts; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
}

impl AuthError {
    /// obshell's dotted code.
    pub fn err_code(&self) -> &'static str {
        match self {
            AuthError::Missing => "Security.Authentication.Unauthorized",
            AuthError::DecryptFailed => "Security.Authentication.Header.DecryptFailed",
            AuthError::Expired { .. } => "Security.Authentication.Expired",
            AuthError::UriMismatch { .. } => "Security.Authentication.Header.UriMismatch",
            AuthError::WrongPassword => "Security.Authentication.IncorrectOceanbasePassword",
            AuthError::BodyDecryptFailed => "Common.Unauthorized",
            AuthError::RateLimited { .. } => "Security.Authentication.TooManyFailures",
        }
    }

    /// obshell's numeric code (SPEC §3).
    pub fn code(&self) -> i64 {
        match self {
            AuthError::DecryptFailed => 1,
            _ => 10008,
        }
    }

    /// 401, or 429 when rate limited.
    pub fn http_status(&self) -> u16 {
        match self {
            AuthError::RateLimited { .. } => 429,
            _ => 401,
        }
    }
}

/// The AES-128-CBC key and IV a v2 header carries for the request body.
#[derive(Clone, PartialEq, Eq)]
pub struct BodyCipher {
    key: [u8; 16],
    iv: [u8; 16],
}

impl std::fmt::Debug for BodyCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BodyCipher(***)")
    }
}

impl BodyCipher {
    /// A random key and IV.
    pub fn random() -> BodyCipher {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        BodyCipher::from_bytes(&bytes).unwrap_or(BodyCipher {
            key: [0; 16],
            iv: [0; 16],
        })
    }

    /// From `key16 ‖ iv16`.
    pub fn from_bytes(bytes: &[u8]) -> Option<BodyCipher> {
        if bytes.len() != 32 {
            return None;
        }
        let mut key = [0u8; 16];
        let mut iv = [0u8; 16];
        key.copy_from_slice(&bytes[..16]);
        iv.copy_from_slice(&bytes[16..]);
        Some(BodyCipher { key, iv })
    }

    /// `base64(key16 ‖ iv16)`, the `keys` field of the v2 header.
    pub fn keys_base64(&self) -> String {
        let mut bytes = Vec::with_capacity(32);
        bytes.extend_from_slice(&self.key);
        bytes.extend_from_slice(&self.iv);
        B64.encode(bytes)
    }

    /// `base64(AES-128-CBC-PKCS7(plain))`.
    pub fn encrypt_body(&self, plain: &[u8]) -> String {
        let encrypted = Aes128CbcEnc::new(&self.key.into(), &self.iv.into())
            .encrypt_padded_vec_mut::<Pkcs7>(plain);
        B64.encode(encrypted)
    }

    /// Inverse of [`BodyCipher::encrypt_body`]; surrounding whitespace and JSON string
    /// quotes around the base64 are tolerated.
    ///
    /// # Errors
    /// [`AuthError::BodyDecryptFailed`] for bad base64, length or padding.
    pub fn decrypt_body(&self, body: &[u8]) -> Result<Vec<u8>, AuthError> {
        let text = std::str::from_utf8(body).map_err(|_| AuthError::BodyDecryptFailed)?;
        let text = text.trim().trim_matches('"');
        let encrypted = B64.decode(text).map_err(|_| AuthError::BodyDecryptFailed)?;
        Aes128CbcDec::new(&self.key.into(), &self.iv.into())
            .decrypt_padded_vec_mut::<Pkcs7>(&encrypted)
            .map_err(|_| AuthError::BodyDecryptFailed)
    }
}

/// What a verified v2 header yields: the body cipher.
#[derive(Debug, Clone)]
pub struct VerifiedV2 {
    pub body: BodyCipher,
}

/// Settings of the failed-auth limiter: per client address a bucket of `burst`
/// failures that refills at `refill_per_sec`; an empty bucket refuses every header
/// from that address (without decrypting) until a token is back.
#[derive(Debug, Clone, Copy)]
pub struct LimiterConfig {
    pub burst: f64,
    pub refill_per_sec: f64,
}

impl Default for LimiterConfig {
    /// 20 failures at once, then one per second.
    fn default() -> LimiterConfig {
        LimiterConfig {
            burst: 20.0,
            refill_per_sec: 1.0,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Per-address token buckets of failed authentications.
#[derive(Debug)]
struct FailureLimiter {
    config: LimiterConfig,
    buckets: HashMap<Option<IpAddr>, Bucket>,
}

/// Most addresses tracked at once; full buckets are forgotten first.
const LIMITER_MAX_ENTRIES: usize = 10_000;

impl FailureLimiter {
    fn refill(&self, bucket: &mut Bucket, now: Instant) {
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens =
            (bucket.tokens + elapsed * self.config.refill_per_sec).min(self.config.burst);
        bucket.at = now;
    }

    /// `Err` with the seconds to wait when `peer` has no failure budget left.
    fn check(&mut self, peer: Option<IpAddr>, now: Instant) -> Result<(), AuthError> {
        let Some(mut bucket) = self.buckets.get(&peer).copied() else {
            return Ok(());
        };
        self.refill(&mut bucket, now);
        self.buckets.insert(peer, bucket);
        if bucket.tokens >= 1.0 {
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / self.config.refill_per_sec.max(1e-9);
            Err(AuthError::RateLimited {
                retry_after_secs: wait.ceil().max(1.0) as u64,
            })
        }
    }

    fn record_failure(&mut self, peer: Option<IpAddr>, now: Instant) {
        if self.buckets.len() >= LIMITER_MAX_ENTRIES && !self.buckets.contains_key(&peer) {
            let config = self.config;
            self.buckets.retain(|_, bucket| {
                let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
                bucket.tokens + elapsed * config.refill_per_sec < config.burst
            });
        }
        let burst = self.config.burst;
        let mut bucket = self.buckets.get(&peer).copied().unwrap_or(Bucket {
            tokens: burst,
            at: now,
        });
        self.refill(&mut bucket, now);
        bucket.tokens = (bucket.tokens - 1.0).max(0.0);
        self.buckets.insert(peer, bucket);
    }
}

/// How the agent authenticates requests.
pub struct AuthConfig {
    pub key: Arc<AgentKey>,
    /// `None`: the agent has no password and requests without headers are accepted.
    /// `Some("")` is a real (empty) password.
    pub password: Option<Secret>,
    /// Source of "now" for header expiry.
    pub clock: Arc<dyn Clock>,
    pub limiter: LimiterConfig,
}

/// Verifies auth headers (server side).
pub struct Authenticator {
    key: Arc<AgentKey>,
    password: Option<Secret>,
    clock: Arc<dyn Clock>,
    limiter: Mutex<FailureLimiter>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("key", &self.key)
            .field("has_password", &self.password.is_some())
            .finish_non_exhaustive()
    }
}

/// Looks `name` up among `map`'s keys case-insensitively (Go's JSON decoding does so).
fn field<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    map.get(name).or_else(|| {
        map.iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    })
}

/// A unix-seconds expiry given as a string or a number.
fn expiry(value: &Value) -> Option<i64> {
    match value {
        Value::String(text) => text.trim().parse().ok(),
        Value::Number(number) => number.as_i64(),
        _ => None,
    }
}

impl Authenticator {
    /// A verifier for `config`.
    pub fn new(config: AuthConfig) -> Authenticator {
        Authenticator {
            key: config.key,
            password: config.password,
            clock: config.clock,
            limiter: Mutex::new(FailureLimiter {
                config: config.limiter,
                buckets: HashMap::new(),
            }),
        }
    }

    /// The agent key.
    pub fn key(&self) -> &AgentKey {
        &self.key
    }

    /// Whether requests must carry an auth header.
    pub fn password_required(&self) -> bool {
        self.password.is_some()
    }

    fn limiter(&self) -> std::sync::MutexGuard<'_, FailureLimiter> {
        // The limiter's state stays consistent even if a holder panicked.
        self.limiter
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Refuses a client whose failure budget is spent, before any RSA work.
    ///
    /// # Errors
    /// [`AuthError::RateLimited`].
    pub fn admit(&self, peer: Option<IpAddr>) -> Result<(), AuthError> {
        self.limiter().check(peer, Instant::now())
    }

    /// Charges a failed attempt to `peer`.
    pub fn record_failure(&self, peer: Option<IpAddr>) {
        self.limiter().record_failure(peer, Instant::now());
    }

    fn check_password(&self, given: Option<&str>) -> Result<(), AuthError> {
        let Some(expected) = &self.password else {
            return Ok(());
        };
        let given = given.ok_or(AuthError::WrongPassword)?;
        if bool::from(given.as_bytes().ct_eq(expected.expose().as_bytes())) {
            Ok(())
        } else {
            Err(AuthError::WrongPassword)
        }
    }

    fn check_expiry(&self, value: Option<&Value>) -> Result<(), AuthError> {
        // A header that decrypted but has no readable ts is treated like garbage, so a
        // valid padding never answers differently from an invalid one.
        let expiry = value.and_then(expiry).ok_or(AuthError::DecryptFailed)?;
        let now = self.clock.now().timestamp();
        if now > expiry {
            return Err(AuthError::Expired { expiry, now });
        }
        Ok(())
    }

    /// Decrypts a base64 header into its JSON object. Every failure (base64, RSA
    /// padding, UTF-8, JSON) is the same [`AuthError::DecryptFailed`].
    fn open_header(&self, header: &str) -> Result<Map<String, Value>, AuthError> {
        let raw = B64
            .decode(header.trim())
            .map_err(|_| AuthError::DecryptFailed)?;
        let plain = self
            .key
            .decrypt_chunked(&raw)
            .ok_or(AuthError::DecryptFailed)?;
        match serde_json::from_slice::<Value>(&plain) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(AuthError::DecryptFailed),
        }
    }

    /// Verifies a v2 `X-OCS-Header` for a request to `request_uri` (path and query
    /// exactly as sent): decryptable, not expired, same URI, right password, and a
    /// 32-byte `keys`.
    ///
    /// # Errors
    /// The [`AuthError`] naming the first failed check.
    pub fn verify_v2(&self, header: &str, request_uri: &str) -> Result<VerifiedV2, AuthError> {
        let map = self.open_header(header)?;
        let body = field(&map, "keys")
            .and_then(Value::as_str)
            .and_then(|keys| B64.decode(keys.trim()).ok())
            .and_then(|bytes| BodyCipher::from_bytes(&bytes))
            .ok_or(AuthError::DecryptFailed)?;
        self.check_expiry(field(&map, "ts"))?;
        let uri = field(&map, "uri")
            .and_then(Value::as_str)
            .ok_or(AuthError::DecryptFailed)?;
        if uri != request_uri {
            return Err(AuthError::UriMismatch {
                header: uri.to_string(),
                request: request_uri.to_string(),
            });
        }
        self.check_password(field(&map, "auth").and_then(Value::as_str))?;
        Ok(VerifiedV2 { body })
    }
}

/// What a client needs to authenticate: the agent's public key and the password.
#[derive(Clone)]
pub struct ClientCredentials {
    pub public_key: RsaPublicKey,
    pub password: Secret,
    /// How long a header stays valid.
    pub validity: Duration,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("validity", &self.validity)
            .finish_non_exhaustive()
    }
}

impl ClientCredentials {
    /// A v2 header for a request to `uri` (path and query) valid until `now + validity`,
    /// with a fresh body cipher.
    ///
    /// # Errors
    /// RSA encryption failed.
    pub fn v2_header(&self, uri: &str, now_unix: i64) -> Result<(String, BodyCipher), rsa::Error> {
        let body = BodyCipher::random();
        let expiry = now_unix + self.validity.as_secs() as i64;
        let plain = serde_json::json!({
            "auth": self.password.expose(),
            "ts": expiry.to_string(),
            "uri": uri,
            "keys": body.keys_base64(),
        });
        let header = encrypt_chunked(&self.public_key, plain.to_string().as_bytes())?;
        Ok((header, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    #[derive(Debug)]
    struct Fixed(i64);
    impl Clock for Fixed {
        fn now(&self) -> chrono::DateTime<Utc> {
            Utc.timestamp_opt(self.0, 0).single().unwrap_or_default()
        }
    }

    fn test_key() -> Arc<AgentKey> {
        // A 1024-bit key keeps the debug-build test fast; the agent generates 2048.
        Arc::new(AgentKey::generate(1024).unwrap())
    }

    fn authenticator(key: &Arc<AgentKey>, now: i64) -> Authenticator {
        Authenticator::new(AuthConfig {
            key: Arc::clone(key),
            password: Some(Secret::new("pw")),
            clock: Arc::new(Fixed(now)),
            limiter: LimiterConfig::default(),
        })
    }

    #[test]
    fn v2_round_trip_and_each_failure() {
        let key = test_key();
        let auth = authenticator(&key, 1_000);
        let creds = ClientCredentials {
            public_key: key.public_key(),
            password: Secret::new("pw"),
            validity: Duration::from_secs(60),
        };
        let long_uri = format!("/api/v1/task/dag/1?x={}", "a".repeat(300));
        for uri in ["/api/v1/tenant/restore", long_uri.as_str()] {
            let (header, cipher) = creds.v2_header(uri, 1_000).unwrap();
            let verified = auth.verify_v2(&header, uri).unwrap();
            assert_eq!(verified.body, cipher);
            let body = cipher.encrypt_body(br#"{"a":1}"#);
            assert_eq!(
                verified.body.decrypt_body(body.as_bytes()).unwrap(),
                br#"{"a":1}"#
            );
        }
        let (header, _) = creds.v2_header("/a", 1_000).unwrap();
        assert!(matches!(
            auth.verify_v2(&header, "/b"),
            Err(AuthError::UriMismatch { .. })
        ));
        assert!(matches!(
            authenticator(&key, 1_061).verify_v2(&header, "/a"),
            Err(AuthError::Expired { .. })
        ));
        let wrong = ClientCredentials {
            password: Secret::new("nope"),
            ..creds.clone()
        };
        let (header, _) = wrong.v2_header("/a", 1_000).unwrap();
        assert_eq!(
            auth.verify_v2(&header, "/a").unwrap_err(),
            AuthError::WrongPassword
        );
        assert_eq!(
            auth.verify_v2("garbage", "/a").unwrap_err(),
            AuthError::DecryptFailed
        );
        let other = ClientCredentials {
            public_key: test_key().public_key(),
            ..creds.clone()
        };
        let (header, _) = other.v2_header("/a", 1_000).unwrap();
        assert_eq!(
            auth.verify_v2(&header, "/a").unwrap_err(),
            AuthError::DecryptFailed
        );
        // A v1-shaped header (`{password, ts}`) no longer authenticates: it has no body
        // key, as obshell's v2-only agents see it.
        let v1 = encrypt_chunked(
            &creds.public_key,
            serde_json::json!({"password": "pw", "ts": 1_060})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(
            auth.verify_v2(&v1, "/a").unwrap_err(),
            AuthError::DecryptFailed
        );
        assert_eq!(
            auth.verify_v2(&v1, "/b").unwrap_err(),
            AuthError::DecryptFailed
        );
    }

    #[test]
    fn limiter_refuses_after_burst_and_refills() {
        let mut limiter = FailureLimiter {
            config: LimiterConfig {
                burst: 3.0,
                refill_per_sec: 1.0,
            },
            buckets: HashMap::new(),
        };
        let start = Instant::now();
        let peer = Some(IpAddr::from([10, 0, 0, 1]));
        for _ in 0..3 {
            limiter.check(peer, start).unwrap();
            limiter.record_failure(peer, start);
        }
        assert!(matches!(
            limiter.check(peer, start),
            Err(AuthError::RateLimited {
                retry_after_secs: 1
            })
        ));
        limiter
            .check(Some(IpAddr::from([10, 0, 0, 2])), start)
            .unwrap();
        limiter.check(peer, start + Duration::from_secs(1)).unwrap();
    }

    #[test]
    fn key_file_is_created_with_mode_0600_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        // Pre-seed a small key so the test does not generate a 2048-bit one.
        let key = AgentKey::generate(1024).unwrap();
        fs::write(
            &path,
            key.private.to_pkcs1_pem(LineEnding::LF).unwrap().as_bytes(),
        )
        .unwrap();
        let loaded = AgentKey::load_or_generate(dir.path()).unwrap();
        assert_eq!(loaded.public_key_base64(), key.public_key_base64());
        fs::write(&path, "not a key").unwrap();
        assert!(matches!(
            AgentKey::load_or_generate(dir.path()),
            Err(KeyError::Invalid { .. })
        ));
    }
}
