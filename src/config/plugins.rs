//! The `cmp-plugins` setting type: Argo CD Config Management Plugins, each
//! run as a sidecar of `argocd-repo-server`. A user lists plugins by hand or
//! names a preset the addon declares (`{preset: cdk8s, image: …}`); this
//! module checks every field, reporting each problem with its path below
//! the setting (`[1].image`), and expands presets so the resolved spec holds
//! complete plugins. It knows nothing of the Pod spec the sidecar becomes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::dns::is_dns_label;

/// The longest plugin name: the sidecar container is `cmp-<name>`, and
/// Argo CD's `<name>-<version>` should stay readable.
pub const MAX_NAME: usize = 40;
const MAX_VERSION: usize = 32;
const RESOURCE_KEYS: &[&str] = &["cpu", "memory", "ephemeral-storage"];

/// One plugin, complete: what `addons.argocd.plugins` resolves to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plugin {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub image: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init: Vec<String>,
    pub generate: Vec<String>,
    /// A file glob in the application's source directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discover: Option<String>,
    /// `requests` / `limits` of `cpu`, `memory`, `ephemeral-storage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Value>,
}

impl Plugin {
    /// The name an Application gives in `spec.source.plugin.name`.
    pub fn argocd_name(&self) -> String {
        match &self.version {
            Some(version) => format!("{}-{version}", self.name),
            None => self.name.clone(),
        }
    }
}

/// A plugin as written: in terrace.yaml, or as a preset in `addon.yaml`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PluginFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discover: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Value>,
}

impl PluginFields {
    /// The user's fields over the preset's.
    fn over(self, preset: &PluginFields) -> PluginFields {
        let preset = preset.clone();
        PluginFields {
            preset: None,
            name: self.name.or(preset.name),
            version: self.version.or(preset.version),
            image: self.image.or(preset.image),
            init: self.init.or(preset.init),
            generate: self.generate.or(preset.generate),
            discover: self.discover.or(preset.discover),
            resources: self.resources.or(preset.resources),
        }
    }
}

/// A problem at `path` below the setting (`[0].image`, or empty).
pub type PathProblem = (String, String);

/// Checks a plugin list; on success, the complete plugins with presets
/// expanded, else every problem found.
pub fn check(
    value: &Value,
    presets: &BTreeMap<String, PluginFields>,
) -> Result<Vec<Plugin>, Vec<PathProblem>> {
    let Value::Array(items) = value else {
        return Err(vec![(
            String::new(),
            format!("{value} is not allowed: expected a list of plugins"),
        )]);
    };
    let mut problems = Vec::new();
    let mut plugins: Vec<(usize, Plugin)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = |field: &str| {
            if field.is_empty() {
                format!("[{i}]")
            } else {
                format!("[{i}].{field}")
            }
        };
        let fields: PluginFields = match serde_json::from_value(item.clone()) {
            Ok(fields) => fields,
            Err(e) => {
                problems.push((at(""), e.to_string()));
                continue;
            }
        };
        let fields = match &fields.preset {
            None => fields,
            Some(name) => match presets.get(name) {
                Some(preset) => fields.clone().over(preset),
                None => {
                    problems.push((at("preset"), unknown_preset(name, presets)));
                    continue;
                }
            },
        };
        match complete(fields) {
            Ok(plugin) => {
                if let Some((first, _)) = plugins.iter().find(|(_, p)| p.name == plugin.name) {
                    problems.push((
                        at("name"),
                        format!(
                            "plugin {:?} is already defined by plugins[{first}]; give each plugin its own name",
                            plugin.name
                        ),
                    ));
                }
                plugins.push((i, plugin));
            }
            Err(found) => problems.extend(found.into_iter().map(|(f, m)| (at(&f), m))),
        }
    }
    if problems.is_empty() {
        Ok(plugins.into_iter().map(|(_, p)| p).collect())
    } else {
        Err(problems)
    }
}

fn unknown_preset(name: &str, presets: &BTreeMap<String, PluginFields>) -> String {
    let known: Vec<&str> = presets.keys().map(String::as_str).collect();
    if known.is_empty() {
        format!("unknown preset {name:?} (there are none)")
    } else {
        format!("unknown preset {name:?} (known: {})", known.join(", "))
    }
}

/// Every field of one plugin checked; problems name the field.
fn complete(fields: PluginFields) -> Result<Plugin, Vec<PathProblem>> {
    let mut problems = Vec::new();
    let mut problem = |field: &str, message: String| problems.push((field.to_string(), message));
    match &fields.name {
        None => problem("name", "is required (or give a `preset`)".into()),
        Some(name) if !is_dns_label(name) || name.len() > MAX_NAME => problem(
            "name",
            format!(
                "{name:?} is not allowed: expected lowercase letters, digits and '-', starting with a letter or digit, at most {MAX_NAME} characters"
            ),
        ),
        Some(_) => {}
    }
    if let Some(version) = &fields.version
        && !is_version(version)
    {
        problem(
            "version",
            format!(
                "{version:?} is not allowed: expected letters, digits, '.', '_' and '-', at most {MAX_VERSION} characters (like v1.0)"
            ),
        );
    }
    match &fields.image {
        None => problem(
            "image",
            "is required: the container image that carries the plugin's tools, pinned by digest (repo/name@sha256:…) or tag".into(),
        ),
        Some(image) => {
            if let Err(e) = check_image(image) {
                problem("image", e);
            }
        }
    }
    if let Some(init) = &fields.init
        && !is_command(init)
    {
        problem(
            "init",
            "expected a command as a non-empty list of non-empty strings".into(),
        );
    }
    match &fields.generate {
        None => problem(
            "generate",
            "is required: the command that prints the manifests (or give a `preset`)".into(),
        ),
        Some(generate) if !is_command(generate) => problem(
            "generate",
            "expected a command as a non-empty list of non-empty strings".into(),
        ),
        Some(_) => {}
    }
    if let Some(discover) = &fields.discover
        && discover.trim().is_empty()
    {
        problem(
            "discover",
            "expected a file glob like cdk8s.yaml, or leave it out".into(),
        );
    }
    if let Some(resources) = &fields.resources {
        for (field, message) in check_resources(resources) {
            problem(&format!("resources{field}"), message);
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Plugin {
        name: fields.name.unwrap_or_default(),
        version: fields.version,
        image: fields.image.unwrap_or_default(),
        init: fields.init.unwrap_or_default(),
        generate: fields.generate.unwrap_or_default(),
        discover: fields.discover,
        resources: fields.resources,
    })
}

fn is_version(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_VERSION
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

fn is_command(command: &[String]) -> bool {
    !command.is_empty() && command.iter().all(|part| !part.trim().is_empty())
}

/// An image reference pinned by tag or digest: a moving default (`node`
/// meaning `node:latest`) would let two repo-server pods run different
/// plugin builds.
pub fn check_image(image: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("{image:?} {why}"));
    if image.is_empty() || image.contains(char::is_whitespace) {
        return bad("is not an image reference");
    }
    let (name, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (image, None),
    };
    if let Some(digest) = digest {
        let hex = digest.strip_prefix("sha256:").unwrap_or("");
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return bad("has a malformed digest: expected @sha256: and 64 lowercase hex digits");
        }
    }
    let last = name.rsplit('/').next().unwrap_or(name);
    let (repository, tag) = match last.split_once(':') {
        Some((repository, tag)) => (repository, Some(tag)),
        None => (last, None),
    };
    if repository.is_empty()
        || name.split('/').skip(1).any(str::is_empty)
        || repository
            .bytes()
            .any(|b| !(b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)))
    {
        return bad(
            "is not an image reference (lowercase repository/name, then :tag or @sha256:…)",
        );
    }
    match (tag, digest) {
        (None, None) => bad(
            "has no tag or digest: pin it, preferably by digest (repo/name@sha256:…), else by tag (repo/name:1.2.3)",
        ),
        (Some(tag), _) if !is_tag(tag) => bad("has a malformed tag"),
        _ => Ok(()),
    }
}

fn is_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(b))
}

fn check_resources(value: &Value) -> Vec<PathProblem> {
    let Value::Object(map) = value else {
        return vec![(
            String::new(),
            "expected a map with requests and limits".into(),
        )];
    };
    let mut problems = Vec::new();
    for (key, amounts) in map {
        if key != "requests" && key != "limits" {
            problems.push((
                format!(".{key}"),
                "unknown key (allowed: requests, limits)".into(),
            ));
            continue;
        }
        let Value::Object(amounts) = amounts else {
            problems.push((
                format!(".{key}"),
                format!("expected a map of {}", RESOURCE_KEYS.join(", ")),
            ));
            continue;
        };
        for (resource, amount) in amounts {
            let field = format!(".{key}.{resource}");
            if !RESOURCE_KEYS.contains(&resource.as_str()) {
                problems.push((
                    field,
                    format!("unknown resource (allowed: {})", RESOURCE_KEYS.join(", ")),
                ));
            } else if !is_quantity(amount) {
                problems.push((
                    field,
                    format!("{amount} is not a quantity like 500m, 1, 256Mi or 2Gi"),
                ));
            }
        }
    }
    problems
}

fn is_quantity(value: &Value) -> bool {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return false,
    };
    let suffixes = ["Ki", "Mi", "Gi", "Ti", "m", "k", "M", "G", "T", ""];
    suffixes.iter().any(|suffix| {
        text.strip_suffix(suffix).is_some_and(|number| {
            let mut parts = number.splitn(2, '.');
            let whole = parts.next().unwrap_or("");
            let fraction = parts.next();
            !whole.is_empty()
                && whole.bytes().all(|b| b.is_ascii_digit())
                && fraction.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
        })
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn presets() -> BTreeMap<String, PluginFields> {
        BTreeMap::from([(
            "cdk8s".to_string(),
            PluginFields {
                name: Some("cdk8s".into()),
                version: Some("v1.0".into()),
                init: Some(vec!["npm".into(), "install".into()]),
                generate: Some(vec!["cdk8s".into(), "synth".into(), "--stdout".into()]),
                discover: Some("cdk8s.yaml".into()),
                ..PluginFields::default()
            },
        )])
    }

    fn problems(value: Value) -> Vec<PathProblem> {
        check(&value, &presets()).unwrap_err()
    }

    #[test]
    fn a_preset_fills_everything_but_the_image() {
        let image = format!("ghcr.io/acme/cdk8s@{DIGEST}");
        let plugins = check(&json!([{"preset": "cdk8s", "image": image}]), &presets()).unwrap();
        assert_eq!(plugins.len(), 1);
        assert_eq!(plugins[0].argocd_name(), "cdk8s-v1.0");
        assert_eq!(plugins[0].generate, ["cdk8s", "synth", "--stdout"]);
        assert_eq!(plugins[0].discover.as_deref(), Some("cdk8s.yaml"));
        assert_eq!(plugins[0].image, image);
        let renamed = check(
            &json!([{"preset": "cdk8s", "name": "cdk8s-next", "image": "node:22"}]),
            &presets(),
        )
        .unwrap();
        assert_eq!(renamed[0].argocd_name(), "cdk8s-next-v1.0");
    }

    #[test]
    fn each_problem_names_its_field() {
        assert_eq!(
            problems(json!([{"preset": "cdk8s"}])),
            [(
                "[0].image".to_string(),
                "is required: the container image that carries the plugin's tools, pinned by digest (repo/name@sha256:…) or tag".to_string()
            )]
        );
        let bad_name = problems(json!([{"name": "Cdk8s", "image": "node:22", "generate": ["x"]}]));
        assert_eq!(bad_name[0].0, "[0].name");
        let unknown = problems(json!([{"preset": "jsonnet", "image": "node:22"}]));
        assert_eq!(unknown[0].0, "[0].preset");
        assert!(unknown[0].1.contains("known: cdk8s"), "{unknown:?}");
        let twice = problems(json!([
            {"preset": "cdk8s", "image": "node:22"},
            {"preset": "cdk8s", "image": "node:24"},
        ]));
        assert_eq!(twice.len(), 1);
        assert_eq!(twice[0].0, "[1].name");
        assert!(twice[0].1.contains("plugins[0]"), "{twice:?}");
        let untagged = problems(json!([{"preset": "cdk8s", "image": "ghcr.io/acme/cdk8s"}]));
        assert_eq!(untagged[0].0, "[0].image");
        assert!(untagged[0].1.contains("no tag or digest"), "{untagged:?}");
        let no_generate = problems(json!([{"name": "x", "image": "node:22"}]));
        assert_eq!(no_generate[0].0, "[0].generate");
        let extra = problems(json!([{"preset": "cdk8s", "image": "node:22", "imag": "x"}]));
        assert_eq!(extra[0].0, "[0]");
        assert!(extra[0].1.contains("imag"), "{extra:?}");
        let resources = problems(json!([{"preset": "cdk8s", "image": "node:22",
            "resources": {"limits": {"memory": "1Gb", "gpu": 1}, "burst": {}}}]));
        let fields: Vec<&str> = resources.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "[0].resources.burst",
                "[0].resources.limits.gpu",
                "[0].resources.limits.memory"
            ]
        );
        assert!(check(&json!({"preset": "cdk8s"}), &presets()).is_err());
    }

    #[test]
    fn images_are_pinned() {
        for good in [
            "node:22".to_string(),
            "ghcr.io/acme/cdk8s:1.2.3".into(),
            "registry.local:5000/acme/cdk8s:v1".into(),
            format!("ghcr.io/acme/cdk8s@{DIGEST}"),
            format!("ghcr.io/acme/cdk8s:1.2@{DIGEST}"),
        ] {
            assert_eq!(check_image(&good), Ok(()), "{good}");
        }
        for bad in [
            "node",
            "registry.local:5000/acme/cdk8s",
            "ghcr.io/acme/cdk8s@sha256:abc",
            "ghcr.io/Acme/CDK8S:1",
            "node:",
            "node:-x",
            "ghcr.io//cdk8s:1",
            "no de:1",
            "",
        ] {
            assert!(check_image(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn quantities() {
        for good in [
            json!("500m"),
            json!("1"),
            json!(2),
            json!("256Mi"),
            json!("1.5Gi"),
        ] {
            assert!(is_quantity(&good), "{good}");
        }
        for bad in [
            json!("1Gb"),
            json!("m"),
            json!("1."),
            json!(true),
            json!("-1"),
        ] {
            assert!(!is_quantity(&bad), "{bad}");
        }
    }
}
