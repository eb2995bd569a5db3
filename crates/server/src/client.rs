//! A client of the agent API that authenticates like obshell's SDKs (v2 header, AES
//! body). The CLI (`obagent dag ...`) and the end-to-end tests use it.

use std::time::Duration;

use obrestore_restore::Secret;
pub use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::auth::{parse_public_key, ClientCredentials, HEADER_V2};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    #[error("invalid server URL '{0}'")]
    Url(String),
    #[error("request to the agent failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("the agent answered {status} {err_code}: {message}")]
    Api {
        status: u16,
        err_code: String,
        message: String,
    },
    #[error("unexpected answer from the agent: {0}")]
    Decode(String),
    #[error("encrypting the auth header: {0}")]
    Encrypt(String),
}

impl ClientError {
    /// The HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// An answer: the HTTP status and the envelope (`None` for 204).
#[derive(Debug, Clone)]
pub struct ApiReply {
    pub status: u16,
    pub envelope: Option<Value>,
}

impl ApiReply {
    /// `data` of a successful envelope, or the error it carries.
    ///
    /// # Errors
    /// [`ClientError::Api`] for an error envelope, [`ClientError::Decode`] when `data`
    /// is not a `T`.
    pub fn data<T: DeserializeOwned>(self) -> Result<Option<T>, ClientError> {
        let Some(envelope) = self.envelope else {
            return Ok(None);
        };
        if let Some(error) = envelope.get("error") {
            let message = error["message"].as_str().unwrap_or_default();
            // obshell's messages rarely name the field; `subErrors` does.
            let message = match error["subErrors"][0]["field"].as_str() {
                Some(field) if !message.contains(field) => format!("{field}: {message}"),
                _ => message.to_string(),
            };
            return Err(ClientError::Api {
                status: self.status,
                err_code: error["errCode"].as_str().unwrap_or_default().to_string(),
                message,
            });
        }
        match envelope.get("data") {
            None | Some(Value::Null) => Ok(None),
            Some(data) => serde_json::from_value(data.clone())
                .map(Some)
                .map_err(|err| ClientError::Decode(format!("data: {err}"))),
        }
    }
}

/// An authenticated connection to one agent.
#[derive(Debug)]
pub struct AgentClient {
    base: String,
    http: reqwest::Client,
    password: Option<Secret>,
    credentials: tokio::sync::OnceCell<ClientCredentials>,
}

impl AgentClient {
    /// A client of the agent at `base_url` (`http://127.0.0.1:2886`). With a password,
    /// every request carries a v2 header (the public key is fetched once from
    /// `/api/v1/secret`); without one, no header is sent.
    ///
    /// # Errors
    /// [`ClientError::Url`] for a URL that is not `http://host:port`.
    pub fn new(base_url: &str, password: Option<Secret>) -> Result<AgentClient, ClientError> {
        let base = base_url.trim().trim_end_matches('/').to_string();
        if !base.starts_with("http://") || base.len() <= "http://".len() {
            return Err(ClientError::Url(base_url.to_string()));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()?;
        Ok(AgentClient {
            base,
            http,
            password,
            credentials: tokio::sync::OnceCell::new(),
        })
    }

    async fn credentials(&self, password: &Secret) -> Result<&ClientCredentials, ClientError> {
        self.credentials
            .get_or_try_init(|| async {
                let reply = self.send(Method::GET, "/api/v1/secret", None, None).await?;
                let secret: crate::dto::SecretDto = reply
                    .data()?
                    .ok_or_else(|| ClientError::Decode("secret without data".to_string()))?;
                Ok(ClientCredentials {
                    public_key: parse_public_key(&secret.public_key)
                        .map_err(ClientError::Decode)?,
                    password: password.clone(),
                    validity: Duration::from_secs(60),
                })
            })
            .await
    }

    async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<String>,
        header: Option<String>,
    ) -> Result<ApiReply, ClientError> {
        let mut request = self
            .http
            .request(method, format!("{}{path_and_query}", self.base));
        if let Some(header) = header {
            request = request.header(HEADER_V2, header);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await?;
        if status == 204 || bytes.is_empty() {
            return Ok(ApiReply {
                status,
                envelope: None,
            });
        }
        let envelope = serde_json::from_slice(&bytes).map_err(|err| {
            ClientError::Decode(format!(
                "status {status}, body is not JSON ({err}): {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
            ))
        })?;
        Ok(ApiReply {
            status,
            envelope: Some(envelope),
        })
    }

    /// Sends `method path_and_query` with an optional JSON body, authenticated.
    ///
    /// # Errors
    /// Transport failures, or an undecodable answer. API errors are in the reply.
    pub async fn call(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> Result<ApiReply, ClientError> {
        let plain = body.map(Value::to_string);
        let Some(password) = &self.password else {
            return self.send(method, path_and_query, plain, None).await;
        };
        let credentials = self.credentials(password).await?;
        let (header, cipher) = credentials
            .v2_header(path_and_query, chrono::Utc::now().timestamp())
            .map_err(|err| ClientError::Encrypt(err.to_string()))?;
        let body = plain.map(|plain| cipher.encrypt_body(plain.as_bytes()));
        self.send(method, path_and_query, body, Some(header)).await
    }

    /// [`AgentClient::call`] and `data` as `T` (`None` for 204 or no data).
    ///
    /// # Errors
    /// As [`AgentClient::call`], plus [`ClientError::Api`] for an error answer.
    pub async fn data<T: DeserializeOwned>(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> Result<Option<T>, ClientError> {
        self.call(method, path_and_query, body).await?.data()
    }
}
