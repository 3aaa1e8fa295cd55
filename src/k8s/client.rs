//! Building the Kubernetes client: from a kubeconfig file and context, or
//! from an API endpoint, a CA bundle and a [`TokenSource`] (EKS).
//!
//! EKS tokens expire after 15 minutes and a `up` can take longer, so a
//! client built from a token source is rebuilt with a fresh token shortly
//! before the current one expires. Tokens are kept out of `Debug` output.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use http::HeaderValue;
use http::header::AUTHORIZATION;
use kube::config::{KubeConfigOptions, Kubeconfig};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::K8sError;
use super::apply::Discovered;

/// A token this close to expiry is replaced before the next request.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(60);

/// A bearer token and when it stops working.
#[derive(Clone)]
pub struct BearerToken {
    secret: String,
    pub expires_at: SystemTime,
}

impl BearerToken {
    pub fn new(secret: impl Into<String>, expires_at: SystemTime) -> BearerToken {
        BearerToken {
            secret: secret.into(),
            expires_at,
        }
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerToken")
            .field("secret", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

pub type TokenError = Box<dyn std::error::Error + Send + Sync>;

/// Makes a fresh bearer token on demand (for EKS: a presigned STS request).
pub trait TokenSource: Send + Sync {
    fn token(&self) -> BoxFuture<'_, Result<BearerToken, TokenError>>;
}

/// Any async closure returning a token is a token source.
impl<F, Fut> TokenSource for F
where
    F: Fn() -> Fut + Send + Sync,
    Fut: Future<Output = Result<BearerToken, TokenError>> + Send + 'static,
{
    fn token(&self) -> BoxFuture<'_, Result<BearerToken, TokenError>> {
        Box::pin(self())
    }
}

/// A connection to one cluster's API, cheap to clone.
#[derive(Clone)]
pub struct Kube {
    inner: Arc<Inner>,
}

struct Inner {
    source: Source,
    current: tokio::sync::Mutex<Option<(kube::Client, SystemTime)>>,
    /// API resources by `apiVersion`, as discovery last reported them.
    pub(super) discovery: Mutex<HashMap<String, Vec<Discovered>>>,
}

enum Source {
    Fixed(kube::Client),
    Token {
        config: Box<kube::Config>,
        tokens: Arc<dyn TokenSource>,
    },
}

impl Kube {
    /// Wraps a ready client (a kubeconfig's, or a test's in-memory API).
    pub fn from_client(client: kube::Client) -> Kube {
        Kube::new(Source::Fixed(client))
    }

    /// From a kubeconfig file (default: `$KUBECONFIG`, else
    /// `~/.kube/config`) and context (default: its current context). Exec
    /// credential plugins (`terrace token`, `aws eks get-token`) are run and
    /// refreshed by the client itself.
    pub async fn from_kubeconfig(
        path: Option<&Path>,
        context: Option<&str>,
    ) -> Result<Kube, K8sError> {
        let kubeconfig = match path {
            Some(path) => Kubeconfig::read_from(path)
                .map_err(|e| K8sError::Kubeconfig(format!("{}: {e}", path.display())))?,
            None => Kubeconfig::read().map_err(|e| K8sError::Kubeconfig(e.to_string()))?,
        };
        let options = KubeConfigOptions {
            context: context.map(str::to_string),
            ..KubeConfigOptions::default()
        };
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|e| K8sError::Kubeconfig(e.to_string()))?;
        let client = kube::Client::try_from(config).map_err(|e| K8sError::Client(e.to_string()))?;
        Ok(Kube::from_client(client))
    }

    /// From the parts EKS `DescribeCluster` returns: the API endpoint and
    /// the CA bundle (PEM), plus a source of bearer tokens.
    pub fn from_parts(
        endpoint: &str,
        ca_pem: &[u8],
        tokens: Arc<dyn TokenSource>,
    ) -> Result<Kube, K8sError> {
        let uri: http::Uri = endpoint.parse().map_err(|e| K8sError::Endpoint {
            endpoint: endpoint.to_string(),
            message: format!("{e}"),
        })?;
        if uri.host().is_none() {
            return Err(K8sError::Endpoint {
                endpoint: endpoint.to_string(),
                message:
                    "needs a scheme and host, like https://ABC.gr7.us-east-1.eks.amazonaws.com"
                        .into(),
            });
        }
        let certs = parse_ca(ca_pem)?;
        let mut config = kube::Config::new(uri);
        config.root_cert = Some(certs);
        Ok(Kube::new(Source::Token {
            config: Box::new(config),
            tokens,
        }))
    }

    fn new(source: Source) -> Kube {
        Kube {
            inner: Arc::new(Inner {
                source,
                current: tokio::sync::Mutex::new(None),
                discovery: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The API server's version: the cheapest call that proves the API
    /// answers and accepts our credentials.
    pub async fn server_version(&self) -> Result<String, K8sError> {
        let info = self
            .client()
            .await?
            .apiserver_version()
            .await
            .map_err(K8sError::api("read the server version"))?;
        Ok(info.git_version)
    }

    /// A client whose credentials are valid now.
    pub async fn client(&self) -> Result<kube::Client, K8sError> {
        let (config, tokens) = match &self.inner.source {
            Source::Fixed(client) => return Ok(client.clone()),
            Source::Token { config, tokens } => (config, tokens),
        };
        let mut current = self.inner.current.lock().await;
        if let Some((client, expires_at)) = current.as_ref()
            && SystemTime::now() + REFRESH_BEFORE_EXPIRY < *expires_at
        {
            return Ok(client.clone());
        }
        let token = tokens
            .token()
            .await
            .map_err(|e| K8sError::Token(e.to_string()))?;
        let mut header = HeaderValue::from_str(&format!("Bearer {}", token.secret))
            .map_err(|_| K8sError::Token("the token is not a valid HTTP header value".into()))?;
        header.set_sensitive(true);
        let mut config = kube::Config::clone(config);
        config.headers.push((AUTHORIZATION, header));
        let client = kube::Client::try_from(config).map_err(|e| K8sError::Client(e.to_string()))?;
        *current = Some((client.clone(), token.expires_at));
        Ok(client)
    }

    pub(super) fn discovery(&self) -> &Mutex<HashMap<String, Vec<Discovered>>> {
        &self.inner.discovery
    }
}

/// The CA bundle must hold at least one certificate: EKS emulators return
/// random base64 here, and trusting nothing would fail later and less clearly.
fn parse_ca(pem: &[u8]) -> Result<Vec<Vec<u8>>, K8sError> {
    let certs: Vec<Vec<u8>> = CertificateDer::pem_slice_iter(pem)
        .map(|c| c.map(|c| c.as_ref().to_vec()))
        .collect::<Result<_, _>>()
        .map_err(|e| K8sError::Ca(format!("not a PEM certificate bundle: {e}")))?;
    if certs.is_empty() {
        return Err(K8sError::Ca(
            "no PEM certificate found (expected -----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_debug_hides_the_secret() {
        let token = BearerToken::new("k8s-aws-v1.secret", SystemTime::now());
        assert!(!format!("{token:?}").contains("secret\""));
        assert!(!format!("{token:?}").contains("k8s-aws-v1"));
    }

    #[test]
    fn rejects_a_ca_that_is_not_a_certificate() {
        let err = parse_ca(b"bm90IGEgY2VydGlmaWNhdGU=").unwrap_err();
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
    }

    #[test]
    fn rejects_an_endpoint_without_host() {
        let tokens: Arc<dyn TokenSource> =
            Arc::new(|| async { Ok::<_, TokenError>(BearerToken::new("t", SystemTime::now())) });
        let err = Kube::from_parts("not a url", b"", tokens).err().unwrap();
        assert!(err.to_string().contains("not a url"), "{err}");
    }
}
