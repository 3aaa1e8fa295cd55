//! The typed settings an addon declares in its `addon.yaml`, and how a
//! user's value for one is checked.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::plugins::{self, PathProblem, PluginFields};
use crate::model::dns::{is_dns_zone, is_zone_label};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SettingType {
    String,
    Bool,
    Integer,
    Enum,
    Domains,
    SecretPrefix,
    GitUrl,
    /// Argo CD Config Management Plugins (see `config::plugins`).
    CmpPlugins,
    /// What the shared load balancer serves HTTPS with: `issue` (a
    /// DNS-validated ACM certificate per DNS zone), `none`, or a list of
    /// existing ACM certificate ARNs.
    Certificates,
    Label,
}

/// In a string default, stands for the cluster's name: a default that must
/// differ per cluster (a secrets prefix) is written once in `addon.yaml`.
pub const CLUSTER_PLACEHOLDER: &str = "{cluster}";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingDef {
    #[serde(rename = "type")]
    pub kind: SettingType,
    /// Absent: the setting is unset unless the user gives it.
    pub default: Option<Value>,
    pub help: String,
    #[serde(default)]
    pub values: Vec<String>,
    pub min: Option<i64>,
    pub max: Option<i64>,
    /// `cmp-plugins` only: plugins a user can name with `preset:`.
    #[serde(default)]
    pub presets: BTreeMap<String, PluginFields>,
}

impl SettingDef {
    /// The default for the cluster `cluster`, with [`CLUSTER_PLACEHOLDER`]
    /// replaced by its name.
    pub fn default_for(&self, cluster: &str) -> Option<Value> {
        match &self.default {
            Some(Value::String(s)) => Some(Value::String(s.replace(CLUSTER_PLACEHOLDER, cluster))),
            other => other.clone(),
        }
    }

    /// What a valid value looks like, for error messages and `addons list`.
    pub fn allowed(&self) -> String {
        match self.kind {
            SettingType::String => "a non-empty string".into(),
            SettingType::Bool => "true or false".into(),
            SettingType::Integer => match (self.min, self.max) {
                (Some(min), Some(max)) => format!("an integer from {min} to {max}"),
                (Some(min), None) => format!("an integer of at least {min}"),
                (None, Some(max)) => format!("an integer of at most {max}"),
                (None, None) => "an integer".into(),
            },
            SettingType::Enum => format!("one of {}", self.values.join(", ")),
            SettingType::Domains => "a list of DNS zone names like example.com".into(),
            SettingType::SecretPrefix => {
                "a path prefix of letters, digits and /_+=.@- ending in / (like acme/)".into()
            }
            SettingType::GitUrl => "a git URL (https://…, ssh://… or git@host:path)".into(),
            SettingType::Certificates => {
                "issue, none, or a list of ACM certificate ARNs (arn:aws:acm:<region>:<account>:certificate/<id>)"
                    .into()
            }
            SettingType::Label => {
                "a Kubernetes label as key=value (like terrace.dev/secrets=allowed)".into()
            }
            SettingType::CmpPlugins => format!(
                "a list of plugins, each {{preset: {}, image: …}} or {{name, version, image, init, generate, discover, resources}}",
                self.presets
                    .keys()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join("|")
            ),
        }
    }

    /// Every problem with `value`, each with its path below the setting
    /// (`[1].image`; empty for the setting itself).
    pub fn problems(&self, value: &Value) -> Vec<PathProblem> {
        match self.kind {
            SettingType::CmpPlugins => plugins::check(value, &self.presets)
                .err()
                .unwrap_or_default(),
            _ => self
                .check(value)
                .err()
                .map(|e| (String::new(), e))
                .into_iter()
                .collect(),
        }
    }

    /// The value the resolved spec holds: a checked `value` with presets
    /// expanded, so later stages see complete plugins.
    pub fn normalize(&self, value: Value) -> Value {
        match self.kind {
            SettingType::CmpPlugins => match plugins::check(&value, &self.presets) {
                Ok(plugins) => serde_json::to_value(plugins).unwrap_or(value),
                Err(_) => value,
            },
            _ => value,
        }
    }

    /// Checks `value`; the error says what was wrong and what is allowed.
    pub fn check(&self, value: &Value) -> Result<(), String> {
        let ok = match (self.kind, value) {
            (SettingType::String, Value::String(s)) => !s.trim().is_empty(),
            (SettingType::Bool, Value::Bool(_)) => true,
            (SettingType::Integer, Value::Number(n)) => n.as_i64().is_some_and(|n| {
                self.min.is_none_or(|min| n >= min) && self.max.is_none_or(|max| n <= max)
            }),
            (SettingType::Enum, Value::String(s)) => self.values.iter().any(|v| v == s),
            (SettingType::Domains, Value::Array(items)) => {
                for item in items {
                    match item {
                        Value::String(s) if is_dns_zone(s) => {}
                        other => {
                            return Err(format!("{other} is not a DNS zone name like example.com"));
                        }
                    }
                }
                let mut names: Vec<_> = items.iter().filter_map(Value::as_str).collect();
                names.sort_unstable();
                if let Some(pair) = names.windows(2).find(|w| w[0] == w[1]) {
                    return Err(format!("zone {:?} is listed twice", pair[0]));
                }
                true
            }
            (SettingType::SecretPrefix, Value::String(s)) => is_secret_prefix(s),
            (SettingType::GitUrl, Value::String(s)) => is_git_url(s),
            (SettingType::Certificates, Value::String(s)) => s == "issue" || s == "none",
            (SettingType::Certificates, Value::Array(items)) if !items.is_empty() => {
                for item in items {
                    match item {
                        Value::String(s) if is_acm_certificate_arn(s) => {}
                        other => {
                            return Err(format!(
                                "{other} is not an ACM certificate ARN (arn:aws:acm:<region>:<account>:certificate/<id>)"
                            ));
                        }
                    }
                }
                let mut arns: Vec<_> = items.iter().filter_map(Value::as_str).collect();
                arns.sort_unstable();
                if let Some(pair) = arns.windows(2).find(|w| w[0] == w[1]) {
                    return Err(format!("certificate {:?} is listed twice", pair[0]));
                }
                true
            }
            (SettingType::Label, Value::String(s)) => is_label(s),
            (SettingType::CmpPlugins, _) => {
                return match self.problems(value).first() {
                    None => Ok(()),
                    Some((path, message)) => Err(format!("{path}: {message}")),
                };
            }
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "{value} is not allowed: expected {}",
                self.allowed()
            ))
        }
    }
}

/// A Secrets Manager / SSM name prefix that can end an IAM resource ARN.
fn is_secret_prefix(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 256
        && s.ends_with('/')
        && !s.starts_with('/')
        && !s.contains("//")
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_+=.@-".contains(&b))
}

/// `arn:<partition>:acm:<region>:<12-digit account>:certificate/<id>`.
fn is_acm_certificate_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    let [arn, partition, service, region, account, resource] = parts[..] else {
        return false;
    };
    let id = resource.strip_prefix("certificate/").unwrap_or_default();
    arn == "arn"
        && partition.starts_with("aws")
        && service == "acm"
        && !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && !id.is_empty()
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// `key=value` as a Kubernetes label: the key an optional DNS-subdomain
/// prefix and `/` before a name, name and value up to 63 characters of
/// letters, digits and `-_.`, starting and ending alphanumeric (the value
/// may be empty).
fn is_label(s: &str) -> bool {
    let segment = |t: &str, may_be_empty: bool| {
        if t.is_empty() {
            return may_be_empty;
        }
        t.len() <= 63
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            && t.starts_with(|c: char| c.is_ascii_alphanumeric())
            && t.ends_with(|c: char| c.is_ascii_alphanumeric())
    };
    let Some((key, value)) = s.split_once('=') else {
        return false;
    };
    let name_ok = match key.split_once('/') {
        Some((prefix, name)) => {
            prefix.len() <= 253 && prefix.split('.').all(is_zone_label) && segment(name, false)
        }
        None => segment(key, false),
    };
    name_ok && segment(value, true)
}

fn is_git_url(s: &str) -> bool {
    let host_and_path = |rest: &str| {
        rest.split_once('/').is_some_and(|(host, path)| {
            !host.is_empty() && !path.is_empty() && !host.contains(char::is_whitespace)
        })
    };
    if s.contains(char::is_whitespace) {
        return false;
    }
    if let Some(rest) = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("ssh://"))
    {
        return host_and_path(rest);
    }
    s.strip_prefix("git@")
        .and_then(|rest| rest.split_once(':'))
        .is_some_and(|(host, path)| !host.is_empty() && !path.is_empty())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn def(kind: SettingType) -> SettingDef {
        SettingDef {
            kind,
            default: None,
            help: String::new(),
            values: vec!["sync".into(), "upsert-only".into()],
            min: Some(1),
            max: Some(10),
            presets: BTreeMap::new(),
        }
    }

    #[test]
    fn checks_each_type() {
        assert!(def(SettingType::String).check(&json!("x")).is_ok());
        assert!(def(SettingType::String).check(&json!(" ")).is_err());
        assert!(def(SettingType::Bool).check(&json!("yes")).is_err());
        assert!(def(SettingType::Integer).check(&json!(10)).is_ok());
        assert!(def(SettingType::Integer).check(&json!(11)).is_err());
        assert!(def(SettingType::Enum).check(&json!("sync")).is_ok());
        let err = def(SettingType::Enum).check(&json!("delete")).unwrap_err();
        assert!(err.contains("one of sync, upsert-only"), "{err}");
    }

    #[test]
    fn domains() {
        let d = def(SettingType::Domains);
        assert!(
            d.check(&json!(["example.com", "dev.example.co.uk."]))
                .is_ok()
        );
        assert!(d.check(&json!([])).is_ok());
        assert!(d.check(&json!(["localhost"])).is_err());
        assert!(d.check(&json!(["Example.com"])).is_err());
        assert!(d.check(&json!(["-a.com"])).is_err());
        assert!(d.check(&json!("example.com")).is_err());
        assert!(
            d.check(&json!(["a.com", "a.com"]))
                .unwrap_err()
                .contains("twice")
        );
    }

    #[test]
    fn certificates() {
        let d = def(SettingType::Certificates);
        let arn =
            "arn:aws:acm:us-east-1:123456789012:certificate/0f4e2b6c-1a2b-4c3d-9e8f-001122334455";
        assert!(d.check(&json!("issue")).is_ok());
        assert!(d.check(&json!("none")).is_ok());
        assert!(d.check(&json!([arn])).is_ok());
        let err = d.check(&json!("yes")).unwrap_err();
        assert!(
            err.contains("issue, none, or a list of ACM certificate ARNs"),
            "{err}"
        );
        assert!(d.check(&json!([])).is_err(), "an empty list names nothing");
        for bad in [
            "arn:aws:iam::123456789012:role/x",
            "arn:aws:acm:us-east-1:1234:certificate/abc",
            "arn:aws:acm:us-east-1:123456789012:certificate/",
            "example.com",
        ] {
            let err = d.check(&json!([bad])).unwrap_err();
            assert!(
                err.contains("is not an ACM certificate ARN"),
                "{bad}: {err}"
            );
        }
        assert!(d.check(&json!([arn, arn])).unwrap_err().contains("twice"));
    }

    #[test]
    fn secret_prefixes() {
        let d = def(SettingType::SecretPrefix);
        assert!(d.check(&json!("acme/")).is_ok());
        assert!(d.check(&json!("acme/prod/")).is_ok());
        for bad in ["acme", "/acme/", "ac me/", "acme//", "a*/"] {
            assert!(d.check(&json!(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn labels() {
        let d = def(SettingType::Label);
        for good in [
            "terrace.dev/secrets=allowed",
            "team=a",
            "env=",
            "a.b/c_d-e=x.y",
        ] {
            assert!(d.check(&json!(good)).is_ok(), "{good}");
        }
        for bad in [
            "team",
            "=x",
            "Terrace.dev/x=y",
            "t/=y",
            "team=-x",
            "a/b/c=d",
            "k=v w",
        ] {
            assert!(d.check(&json!(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn cluster_placeholder_in_defaults() {
        let mut d = def(SettingType::SecretPrefix);
        d.default = Some(json!("terrace/{cluster}/"));
        assert_eq!(
            d.default_for("acme-us-east-1"),
            Some(json!("terrace/acme-us-east-1/"))
        );
        d.default = Some(json!(3));
        assert_eq!(d.default_for("x"), Some(json!(3)));
    }

    #[test]
    fn git_urls() {
        let d = def(SettingType::GitUrl);
        for good in [
            "https://github.com/acme/platform.git",
            "ssh://git@github.com/acme/platform.git",
            "git@github.com:acme/platform.git",
        ] {
            assert!(d.check(&json!(good)).is_ok(), "{good}");
        }
        for bad in [
            "github.com/acme",
            "https://",
            "ftp://x/y",
            "git@github.com",
            "https://a b/c",
        ] {
            assert!(d.check(&json!(bad)).is_err(), "{bad}");
        }
    }
}
