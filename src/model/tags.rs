//! The tags that mark a resource as Terrace's (DESIGN.md section 1).

use std::collections::BTreeMap;

pub const TAG_MANAGED_BY: &str = "terrace.dev/managed-by";
pub const TAG_MANAGED_BY_VALUE: &str = "terrace";
pub const TAG_CLUSTER: &str = "terrace.dev/cluster";
/// `true` on every resource of a cluster the janitor must never remove.
pub const TAG_KEEP: &str = "terrace.dev/keep";
pub const TAG_KEEP_VALUE: &str = "true";
/// On the EKS cluster: when it may be removed (RFC 3339 UTC).
pub const TAG_EXPIRES_AT: &str = "terrace.dev/expires-at";

/// The tags every AWS resource of cluster `name` carries.
pub fn cluster_tags(name: &str) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        (TAG_CLUSTER, name.to_string()),
        (TAG_MANAGED_BY, TAG_MANAGED_BY_VALUE.to_string()),
    ])
}

/// Whether `tags` mark a resource the janitor must never remove.
pub fn kept<'a>(mut tags: impl Iterator<Item = (&'a str, &'a str)>) -> bool {
    tags.any(|(k, v)| k == TAG_KEEP && v.eq_ignore_ascii_case(TAG_KEEP_VALUE))
}

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

    #[test]
    fn a_cluster_carries_the_tags_it_is_recognised_by() {
        let tags = cluster_tags("c1");
        assert!(owned_by_terrace(
            tags.iter().map(|(k, v)| (*k, v.as_str())),
            "c1"
        ));
    }
}
