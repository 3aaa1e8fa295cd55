//! The AWS commercial regions Terrace can build in, and help for typos.
//!
//! A fixed list, because `render` must work offline; `preflight` asks the
//! account whether an opt-in region is enabled.

/// Availability zone IDs where EKS refuses control-plane subnets (EKS user
/// guide, subnet requirements; the same list eksctl avoids). By ID because
/// the zone *name* behind an ID differs per account.
pub const EKS_UNSUPPORTED_ZONE_IDS: &[&str] = &["use1-az3", "usw1-az2", "cac1-az3"];

/// One AWS commercial region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub code: &'static str,
    /// Opt-in regions must be enabled per account before use.
    pub opt_in: bool,
}

const fn r(code: &'static str, opt_in: bool) -> Region {
    Region { code, opt_in }
}

pub const REGIONS: &[Region] = &[
    r("af-south-1", true),
    r("ap-east-1", true),
    r("ap-east-2", true),
    r("ap-northeast-1", false),
    r("ap-northeast-2", false),
    r("ap-northeast-3", false),
    r("ap-south-1", false),
    r("ap-south-2", true),
    r("ap-southeast-1", false),
    r("ap-southeast-2", false),
    r("ap-southeast-3", true),
    r("ap-southeast-4", true),
    r("ap-southeast-5", true),
    r("ap-southeast-6", true),
    r("ap-southeast-7", true),
    r("ca-central-1", false),
    r("ca-west-1", true),
    r("eu-central-1", false),
    r("eu-central-2", true),
    r("eu-north-1", false),
    r("eu-south-1", true),
    r("eu-south-2", true),
    r("eu-west-1", false),
    r("eu-west-2", false),
    r("eu-west-3", false),
    r("il-central-1", true),
    r("me-central-1", true),
    r("me-south-1", true),
    r("mx-central-1", true),
    r("sa-east-1", false),
    r("us-east-1", false),
    r("us-east-2", false),
    r("us-west-1", false),
    r("us-west-2", false),
];

pub fn find(code: &str) -> Option<Region> {
    REGIONS.iter().copied().find(|r| r.code == code)
}

/// The region code closest to `input`, when one is close enough to be a typo.
pub fn suggest(input: &str) -> Option<&'static str> {
    let input = input.trim().to_ascii_lowercase();
    REGIONS
        .iter()
        .map(|r| (strsim::damerau_levenshtein(&input, r.code), r.code))
        .filter(|(distance, _)| *distance <= 3)
        .min()
        .map(|(_, code)| code)
}

/// The error text for a region that is not in the list.
pub fn unknown(input: &str) -> String {
    match suggest(input) {
        Some(code) => format!("{input:?} is not an AWS commercial region (did you mean {code}?)"),
        None => format!(
            "{input:?} is not an AWS commercial region (allowed: {})",
            REGIONS
                .iter()
                .map(|r| r.code)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_regions() {
        assert!(find("us-east-1").is_some());
        assert!(find("af-south-1").unwrap().opt_in);
        assert!(find("mars-1").is_none());
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("us-east1"), Some("us-east-1"));
        assert_eq!(suggest("eu-west-4"), Some("eu-west-1"));
        assert_eq!(suggest("US-WEST-2"), Some("us-west-2"));
        assert_eq!(suggest("mars-1"), None);
        assert!(unknown("mars-1").contains("not an AWS commercial region"));
    }

    #[test]
    fn list_is_sorted_and_unique() {
        let codes: Vec<_> = REGIONS.iter().map(|r| r.code).collect();
        let mut sorted = codes.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(codes, sorted);
    }
}
