//! Which Route53 records belong to a cluster's ExternalDNS.
//!
//! ExternalDNS's TXT registry marks every record it creates with a TXT
//! record whose value holds `external-dns/owner=<owner id>`; Terrace sets
//! the owner id to the cluster name. Since v0.12 the TXT record's name
//! carries the record type as a prefix of its first label (`a-web.example.com`
//! owns the non-AAAA records of `web.example.com`, `aaaa-…` the AAAA ones);
//! before that (and alongside it until v0.18) the TXT record had the same
//! name as what it owned. Both readings are applied exactly as ExternalDNS
//! applies them, so this owns what ExternalDNS itself would consider its
//! own, and nothing else: never the zone's SOA or apex NS records.

/// A record set as far as ownership is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// As Route53 returns it (`web.example.com.`, `\052.example.com.`).
    pub name: String,
    pub kind: String,
    pub set_identifier: Option<String>,
    /// The values of a TXT record, quotes included.
    pub values: Vec<String>,
}

/// Record types ExternalDNS puts into the new-format TXT name prefix.
const TYPE_PREFIXES: &[&str] = &["a", "aaaa", "cname", "ns", "mx", "srv"];

/// Lowercase, no trailing dot, Route53's `\052` escape back to `*`.
pub fn normalize(name: &str) -> String {
    name.trim_end_matches('.')
        .replace("\\052", "*")
        .to_ascii_lowercase()
}

/// Whether a TXT value is an ExternalDNS registry entry of `owner`.
pub fn owned_by(value: &str, owner: &str) -> bool {
    let value = value.trim().trim_matches('"');
    let wanted = format!("external-dns/owner={owner}");
    let mut heritage = false;
    let mut ours = false;
    for part in value.split(',') {
        heritage |= part == "heritage=external-dns";
        ours |= part == wanted;
    }
    heritage && ours
}

/// The endpoint name a registry TXT name stands for, and whether it tracks
/// the AAAA records of that name (ExternalDNS's `toEndpointName`).
fn endpoint_of(txt_name: &str) -> (String, bool) {
    let (first, rest) = match txt_name.split_once('.') {
        Some((first, rest)) => (first, Some(rest)),
        None => (txt_name, None),
    };
    for t in TYPE_PREFIXES {
        if let Some(stripped) = first.strip_prefix(t).and_then(|s| s.strip_prefix('-')) {
            let name = match rest {
                Some(rest) => format!("{stripped}.{rest}"),
                None => stripped.to_string(),
            };
            return (name, *t == "aaaa");
        }
    }
    (txt_name.to_string(), false)
}

/// The records `owner` owns in the zone `zone`, grouped: each group is one
/// registry TXT record (first) and the records it owns, so a group can be
/// deleted in one change. Indices refer to `records`; a record owned by
/// two TXT records (old and new format) appears once, in the first group.
pub fn owned(records: &[Record], owner: &str, zone: &str) -> Vec<Vec<usize>> {
    let zone = normalize(zone);
    let mut taken = vec![false; records.len()];
    let mut groups = Vec::new();
    for (i, txt) in records.iter().enumerate() {
        if txt.kind != "TXT" || !txt.values.iter().any(|v| owned_by(v, owner)) {
            continue;
        }
        let (endpoint, aaaa) = endpoint_of(&normalize(&txt.name));
        let mut group = vec![i];
        taken[i] = true;
        for (j, r) in records.iter().enumerate() {
            let name = normalize(&r.name);
            let protected = r.kind == "SOA" || (r.kind == "NS" && name == zone);
            if taken[j]
                || protected
                || r.kind == "TXT"
                || name != endpoint
                || r.set_identifier != txt.set_identifier
                || (r.kind == "AAAA") != aaaa
            {
                continue;
            }
            taken[j] = true;
            group.push(j);
        }
        groups.push(group);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(name: &str, kind: &str, value: &str) -> Record {
        Record {
            name: name.into(),
            kind: kind.into(),
            set_identifier: None,
            values: vec![value.into()],
        }
    }

    const OURS: &str =
        "\"heritage=external-dns,external-dns/owner=c1,external-dns/resource=service/default/web\"";
    const THEIRS: &str = "\"heritage=external-dns,external-dns/owner=c1-b,external-dns/resource=service/default/web\"";

    #[test]
    fn owner_must_match_exactly() {
        assert!(owned_by(OURS, "c1"));
        assert!(!owned_by(THEIRS, "c1"));
        assert!(!owned_by("\"external-dns/owner=c1\"", "c1"));
    }

    #[test]
    fn new_format_owns_the_stripped_name() {
        let records = vec![
            rec("example.com.", "NS", "ns"),
            rec("example.com.", "SOA", "soa"),
            rec("a-web.example.com.", "TXT", OURS),
            rec("web.example.com.", "A", "1.2.3.4"),
            rec("web.example.com.", "AAAA", "::1"),
            rec("aaaa-web.example.com.", "TXT", OURS),
            rec("other.example.com.", "A", "1.2.3.5"),
        ];
        assert_eq!(
            owned(&records, "c1", "example.com"),
            vec![vec![2, 3], vec![5, 4]]
        );
    }

    #[test]
    fn old_format_wildcards_and_foreign_owners() {
        let records = vec![
            rec("api.example.com.", "TXT", OURS),
            rec("api.example.com.", "CNAME", "lb.example.net"),
            rec("cname-\\052.example.com.", "TXT", OURS),
            rec("\\052.example.com.", "CNAME", "lb.example.net"),
            rec("a-b.example.com.", "TXT", THEIRS),
            rec("b.example.com.", "A", "1.2.3.4"),
        ];
        assert_eq!(
            owned(&records, "c1", "example.com."),
            vec![vec![0, 1], vec![2, 3]]
        );
    }

    #[test]
    fn set_identifiers_must_agree_and_apex_ns_is_never_owned() {
        let mut weighted = rec("web.example.com.", "A", "1.2.3.4");
        weighted.set_identifier = Some("blue".into());
        let records = vec![
            rec("a-web.example.com.", "TXT", OURS),
            weighted,
            rec("example.com.", "TXT", OURS),
            rec("example.com.", "NS", "ns"),
        ];
        assert_eq!(owned(&records, "c1", "example.com"), vec![vec![0], vec![2]]);
    }
}
