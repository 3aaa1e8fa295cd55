//! The Kubernetes layer: a client (from a kubeconfig, or from an API
//! endpoint, CA and a refreshing bearer token), server-side apply of
//! manifests with each kind resolved through API discovery, and one polling
//! wait with backoff and a deadline.
//!
//! It knows nothing of addons, Argo CD or AWS: callers hand it objects and
//! conditions, and an EKS token arrives through a [`TokenSource`]. It never
//! prints and never logs a token.

mod apply;
mod client;
mod wait;

pub use apply::{FIELD_MANAGER, Object, Resolved, condition, describe_conditions, parse};
pub use client::{BearerToken, Kube, TokenError, TokenSource};
pub use wait::{Backoff, Poll, WaitError, until};

#[derive(Debug, thiserror::Error)]
pub enum K8sError {
    #[error("kubeconfig: {0}")]
    Kubeconfig(String),
    #[error("cluster CA: {0}")]
    Ca(String),
    #[error("API endpoint {endpoint:?}: {message}")]
    Endpoint { endpoint: String, message: String },
    #[error("bearer token: {0}")]
    Token(String),
    #[error("cannot build a Kubernetes client: {0}")]
    Client(String),
    #[error("{action}: {source}")]
    Api {
        action: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "the API server serves no {kind} in {api_version} (is its CustomResourceDefinition installed?)"
    )]
    UnknownKind { api_version: String, kind: String },
    #[error("{source_name}: {message}")]
    Manifest {
        source_name: String,
        message: String,
    },
    #[error(transparent)]
    Wait(#[from] WaitError),
}

impl K8sError {
    /// The API refused us: waiting will not help.
    pub fn is_forbidden(&self) -> bool {
        matches!(self, K8sError::Api { source: kube::Error::Api(status), .. } if status.code == 401 || status.code == 403)
    }

    /// The object (or its kind) does not exist yet.
    pub fn is_not_found(&self) -> bool {
        match self {
            K8sError::Api {
                source: kube::Error::Api(status),
                ..
            } => status.code == 404,
            K8sError::UnknownKind { .. } => true,
            _ => false,
        }
    }

    fn api(action: impl Into<String>) -> impl FnOnce(kube::Error) -> K8sError {
        let action = action.into();
        move |source| K8sError::Api { action, source }
    }
}
