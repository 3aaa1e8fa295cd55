//! What a DNS label and a DNS zone are, for cluster, fleet and addon names
//! and for ExternalDNS's zones.

/// What [`is_dns_label`] accepts, for error messages.
pub const DNS_LABEL_RULE: &str = "must be a lowercase DNS label: letters, digits and '-', starting with a letter, at most 63 characters";

/// A lowercase RFC 1123 label that starts with a letter.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && !s.ends_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A public DNS zone name: dot-separated labels of letters, digits and
/// hyphens, at least two labels, an optional trailing dot.
pub fn is_dns_zone(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    let labels: Vec<&str> = s.split('.').collect();
    s.len() <= 253 && labels.len() >= 2 && labels.iter().all(|l| is_zone_label(l))
}

/// One label of a DNS name: lowercase letters, digits and inner hyphens
/// (also the labels of a Kubernetes label key's prefix).
pub fn is_zone_label(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 63
        && l.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !l.starts_with('-')
        && !l.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels() {
        assert!(is_dns_label("terrace-us-east-1"));
        for bad in ["", "Terrace", "1abc", "a_b", "a-", &"a".repeat(64)] {
            assert!(!is_dns_label(bad), "{bad}");
        }
    }
}
