//! The Kubernetes layer: a client (from a kubeconfig, or from an API
//! endpoint, CA and a refreshing bearer token), server-side apply of
//! manifests with each kind resolved through API discovery, and waits on the
//! cluster through the one wait primitive ([`crate::wait`]).
//!
//! It knows nothing of addons, Argo CD or AWS: callers hand it objects and
//! conditions, and an EKS token arrives through a [`TokenSource`]. It never
//! prints and never logs a token.

mod apply;
mod client;
mod wait;

pub use apply::{FIELD_MANAGER, Object, Resolved, condition, describe_conditions, parse};
pub use client::{BearerToken, Kube, TokenError, TokenSource};
pub use wait::until;

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
    /// The message holds the whole cause (kube's own chain repeats
    /// itself), so `error` is deliberately not an error source.
    #[error("{action}: {}", describe_kube_error(error))]
    Api {
        action: String,
        error: Box<kube::Error>,
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
    Wait(#[from] crate::wait::WaitError),
}

impl K8sError {
    /// The API refused us: waiting will not help.
    pub fn is_forbidden(&self) -> bool {
        self.status_code()
            .is_some_and(|code| code == 401 || code == 403)
    }

    /// The object (or its kind) does not exist yet.
    pub fn is_not_found(&self) -> bool {
        matches!(self, K8sError::UnknownKind { .. }) || self.status_code() == Some(404)
    }

    fn status_code(&self) -> Option<u16> {
        match self {
            K8sError::Api { error, .. } => match error.as_ref() {
                kube::Error::Api(status) => Some(status.code),
                _ => None,
            },
            _ => None,
        }
    }

    pub(crate) fn api(action: impl Into<String>) -> impl FnOnce(kube::Error) -> K8sError {
        let action = action.into();
        move |error| K8sError::Api {
            action,
            error: Box::new(error),
        }
    }
}

/// An API refusal as its message and code; anything else as its chain of
/// causes with repeats dropped.
fn describe_kube_error(error: &kube::Error) -> String {
    if let kube::Error::Api(status) = error {
        return format!("{} ({} {})", status.message, status.code, status.reason);
    }
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(c) = cause {
        let message = c.to_string();
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        cause = c.source();
    }
    text
}
