//! Everything Terrace does directly with the AWS SDK, except teardown:
//! building clients for a region, preflight checks, the EKS managed
//! add-on versions for a Kubernetes version, the regional state
//! bucket, EKS bearer tokens, kubeconfig entries, cluster discovery and
//! closing the VPC's default security group.
//!
//! Modules here return data and typed errors; they never print, and no
//! credential or token value ever reaches an error message or an event.

pub mod addon_versions;
pub mod clients;
pub mod discovery;
pub mod kubeconfig;
pub mod preflight;
pub mod state;
pub mod token;
pub mod vpc;

pub use clients::{Aws, ClientError};

// One `SdkError` type serves every service crate; the STS re-export names it.
use aws_sdk_sts::error::SdkError;

/// An SDK error as one line with its service code and message, e.g.
/// `AccessDenied: User ... is not authorized`. The SDK's error context never
/// contains credentials (they are redacted in its `Debug` output too).
pub(crate) fn sdk_message<E, R>(err: &SdkError<E, R>) -> String
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            match (e.code(), e.message()) {
                (Some(code), Some(msg)) => format!("{code}: {msg}"),
                (Some(code), None) => code.to_string(),
                _ => format!(
                    "{}",
                    aws_smithy_types::error::display::DisplayErrorContext(e)
                ),
            }
        }
        SdkError::DispatchFailure(failure) => match failure.as_connector_error() {
            Some(connector) => transport_message(connector),
            None => format!(
                "{}",
                aws_smithy_types::error::display::DisplayErrorContext(err)
            ),
        },
        other => format!(
            "{}",
            aws_smithy_types::error::display::DisplayErrorContext(other)
        ),
    }
}

/// A request that never got an answer (no credentials, no connection), as
/// the first line of each distinct cause, without the SDK's debug dump.
fn transport_message(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(err);
    while let Some(e) = current {
        let text = e.to_string();
        if text.contains("no credentials found in chain") {
            return "no AWS credentials found (environment, profile, SSO, web identity, container or instance role): \
                    set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                .to_string();
        }
        let line = text.lines().next().unwrap_or_default().trim().to_string();
        if !line.is_empty() && !parts.iter().any(|p| p.contains(&line)) {
            parts.push(line);
        }
        current = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrapped(&'static str, std::io::Error);

    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.1)
        }
    }

    #[test]
    fn transport_errors_read_as_one_line_per_cause() {
        let refused = Wrapped(
            "io error",
            std::io::Error::other("Connection refused (os error 111)"),
        );
        assert_eq!(
            transport_message(&refused),
            "io error: Connection refused (os error 111)"
        );
        let nothing = Wrapped(
            "dispatch failure",
            std::io::Error::other(
                "no credentials found in chain. Attempted:\n  Environment: not set",
            ),
        );
        let text = transport_message(&nothing);
        assert!(text.starts_with("no AWS credentials found"), "{text}");
        assert!(!text.contains('\n'), "{text}");
    }
}
