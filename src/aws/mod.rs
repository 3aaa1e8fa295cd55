//! Everything Terrace does directly with the AWS SDK, except teardown:
//! building clients for a region, preflight checks, the regional state
//! bucket, EKS bearer tokens, kubeconfig entries, cluster discovery and
//! closing the VPC's default security group.
//!
//! Modules here return data and typed errors; they never print, and no
//! credential or token value ever reaches an error message or an event.

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

/// Tags that mark a resource as Terrace's (DESIGN.md section 1).
pub const TAG_MANAGED_BY: &str = "terrace.dev/managed-by";
pub const TAG_MANAGED_BY_VALUE: &str = "terrace";
pub const TAG_CLUSTER: &str = "terrace.dev/cluster";

/// Whether `tags` mark a resource as belonging to Terrace's cluster `name`.
pub fn owned_by_terrace<'a>(
    tags: impl IntoIterator<Item = (&'a str, &'a str)>,
    cluster: &str,
) -> bool {
    let (mut managed, mut ours) = (false, false);
    for (k, v) in tags {
        managed |= k == TAG_MANAGED_BY && v == TAG_MANAGED_BY_VALUE;
        ours |= k == TAG_CLUSTER && v == cluster;
    }
    managed && ours
}

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
        other => format!(
            "{}",
            aws_smithy_types::error::display::DisplayErrorContext(other)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ownership_needs_both_tags() {
        let both = [(TAG_MANAGED_BY, "terrace"), (TAG_CLUSTER, "c1")];
        assert!(owned_by_terrace(both, "c1"));
        assert!(!owned_by_terrace(both, "c2"));
        assert!(!owned_by_terrace([(TAG_CLUSTER, "c1")], "c1"));
        assert!(!owned_by_terrace([(TAG_MANAGED_BY, "terrace")], "c1"));
    }
}
