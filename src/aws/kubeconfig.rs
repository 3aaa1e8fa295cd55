//! Kubeconfig entries for Terrace clusters: one cluster, user and context,
//! each named after the cluster, merged into an existing kubeconfig with
//! every other entry preserved. The user runs this binary's `token`
//! subcommand as an exec plugin, so kubectl needs no AWS CLI. Writes are
//! atomic (temporary file + rename) and leave the file mode 0600. This
//! module touches only the entries it names.
//!
//! The CA must be base64; when it does not decode to a PEM certificate (the
//! moto emulator returns random bytes) the entry is still written, with a
//! warning: the kubeconfig records what EKS said, kubectl will refuse the
//! connection with its own clear error, and tests against the emulator
//! can exercise the whole path. Terrace's own Kubernetes client must
//! validate the CA before trusting it.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::Serialize;
use serde_norway::{Mapping, Value};

use super::token::EXEC_API_VERSION;
use super::{Aws, sdk_message};

#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {
    #[error("no kubeconfig path: pass --kubeconfig, or set KUBECONFIG or HOME")]
    NoPath,
    #[error("cannot tell the path of this executable, which the kubeconfig's exec plugin runs")]
    NoExecutable,
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a kubeconfig: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("{}: cannot write: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no EKS cluster named {cluster} in {region}")]
    NotFound { cluster: String, region: String },
    #[error("cannot describe EKS cluster {cluster}: {message}")]
    Describe { cluster: String, message: String },
    #[error("EKS cluster {cluster} has no {what} yet (status {status}); wait until it is ACTIVE")]
    NotReady {
        cluster: String,
        what: &'static str,
        status: String,
    },
    #[error("EKS cluster {cluster}: certificate authority data is not base64: {reason}")]
    BadCa { cluster: String, reason: String },
}

/// What EKS says about reaching one cluster: what goes into the
/// kubeconfig besides the exec plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub cluster: String,
    pub region: String,
    pub server: String,
    /// Base64 PEM, as EKS returns it.
    pub ca_data: String,
}

/// The exec plugin kubectl runs for a token: this binary's `token`
/// subcommand, with the environment it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exec {
    pub command: PathBuf,
    /// E.g. the `AWS_PROFILE` in use: kubectl runs the plugin with the
    /// user's environment, so the entry keeps the profile it was made
    /// with, as `aws eks update-kubeconfig` does.
    pub env: Vec<(String, String)>,
}

impl Exec {
    /// This binary, keeping `aws_profile` when one is set.
    pub fn new(command: PathBuf, aws_profile: Option<&str>) -> Exec {
        Exec {
            command,
            env: aws_profile
                .filter(|p| !p.is_empty())
                .map(|p| ("AWS_PROFILE".to_string(), p.to_string()))
                .into_iter()
                .collect(),
        }
    }
}

/// Where a cluster's entry goes, and the exec plugin it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub path: PathBuf,
    pub exec: Exec,
}

/// What [`write_entry`] did.
#[derive(Debug, Clone, Serialize)]
pub struct Written {
    pub path: PathBuf,
    pub context: String,
    pub changed: bool,
}

/// `explicit`, else the first path of `KUBECONFIG`, else `~/.kube/config`.
pub fn resolve_path(
    explicit: Option<&Path>,
    kubeconfig_var: Option<&std::ffi::OsStr>,
    home: Option<&Path>,
) -> Result<PathBuf, KubeconfigError> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    if let Some(first) =
        kubeconfig_var.and_then(|v| std::env::split_paths(v).find(|p| !p.as_os_str().is_empty()))
    {
        return Ok(first);
    }
    home.map(|h| h.join(".kube").join("config"))
        .ok_or(KubeconfigError::NoPath)
}

/// Reads the endpoint and CA of `cluster` from EKS.
pub async fn entry(aws: &Aws, cluster: &str) -> Result<(Entry, Vec<String>), KubeconfigError> {
    let out = aws
        .eks()
        .describe_cluster()
        .name(cluster)
        .send()
        .await
        .map_err(|e| {
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception())
            {
                KubeconfigError::NotFound {
                    cluster: cluster.to_string(),
                    region: aws.region().to_string(),
                }
            } else {
                KubeconfigError::Describe {
                    cluster: cluster.to_string(),
                    message: sdk_message(&e),
                }
            }
        })?;
    let described = out.cluster();
    let status = described
        .and_then(|c| c.status())
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|| "unknown".into());
    let not_ready = |what| KubeconfigError::NotReady {
        cluster: cluster.to_string(),
        what,
        status: status.clone(),
    };
    let server = described
        .and_then(|c| c.endpoint())
        .ok_or_else(|| not_ready("endpoint"))?;
    let ca_data = described
        .and_then(|c| c.certificate_authority())
        .and_then(|c| c.data())
        .ok_or_else(|| not_ready("certificate authority"))?;
    let mut warnings = Vec::new();
    if !ca_is_pem_certificate(cluster, ca_data)? {
        warnings.push(format!(
            "the certificate authority EKS returned for {cluster} is not a PEM certificate; kubectl will not trust this endpoint"
        ));
    }
    Ok((
        Entry {
            cluster: cluster.to_string(),
            region: aws.region().to_string(),
            server: server.to_string(),
            ca_data: ca_data.to_string(),
        },
        warnings,
    ))
}

/// Whether base64 `data` holds a PEM certificate; an error if it is not base64.
pub fn ca_is_pem_certificate(cluster: &str, data: &str) -> Result<bool, KubeconfigError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|e| KubeconfigError::BadCa {
            cluster: cluster.to_string(),
            reason: e.to_string(),
        })?;
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return Ok(false);
    };
    let body = text
        .trim()
        .strip_prefix("-----BEGIN CERTIFICATE-----")
        .and_then(|rest| rest.split("-----END CERTIFICATE-----").next());
    Ok(body.is_some_and(|b| {
        let inner: String = b.split_whitespace().collect();
        !inner.is_empty()
            && base64::engine::general_purpose::STANDARD
                .decode(inner)
                .is_ok()
    }))
}

/// Merges `entry`, with `plugin` for tokens, into the kubeconfig at `path`
/// and makes it the current context; creates the file if missing.
pub fn write_entry(path: &Path, entry: &Entry, plugin: &Exec) -> Result<Written, KubeconfigError> {
    let (before, mut doc) = read(path)?;
    let name = entry.cluster.as_str();
    let mut exec = Mapping::new();
    exec.insert("apiVersion".into(), EXEC_API_VERSION.into());
    exec.insert(
        "command".into(),
        plugin.command.display().to_string().into(),
    );
    exec.insert(
        "args".into(),
        Value::Sequence(
            ["token", "--cluster", name, "--region", &entry.region]
                .into_iter()
                .map(Value::from)
                .collect(),
        ),
    );
    if !plugin.env.is_empty() {
        exec.insert(
            "env".into(),
            Value::Sequence(
                plugin
                    .env
                    .iter()
                    .map(|(k, v)| {
                        named([("name", k.as_str().into()), ("value", v.as_str().into())])
                    })
                    .collect(),
            ),
        );
    }
    exec.insert("interactiveMode".into(), "Never".into());
    exec.insert("provideClusterInfo".into(), false.into());

    upsert(
        path,
        &mut doc,
        "clusters",
        name,
        "cluster",
        named([
            ("server", entry.server.as_str().into()),
            ("certificate-authority-data", entry.ca_data.as_str().into()),
        ]),
    )?;
    upsert(
        path,
        &mut doc,
        "users",
        name,
        "user",
        named([("exec", Value::Mapping(exec))]),
    )?;
    upsert(
        path,
        &mut doc,
        "contexts",
        name,
        "context",
        named([("cluster", name.into()), ("user", name.into())]),
    )?;
    doc.insert("current-context".into(), name.into());
    let changed = write_if_changed(path, before.as_deref(), &doc)?;
    Ok(Written {
        path: path.to_path_buf(),
        context: name.to_string(),
        changed,
    })
}

/// Removes the cluster, user and context named `name`; returns whether
/// anything was removed. A missing file is not an error.
pub fn remove_entry(path: &Path, name: &str) -> Result<bool, KubeconfigError> {
    let (before, mut doc) = read(path)?;
    if before.is_none() {
        return Ok(false);
    }
    for list in ["clusters", "users", "contexts"] {
        if let Some(Value::Sequence(items)) = doc.get_mut(list) {
            items.retain(|item| item.get("name").and_then(Value::as_str) != Some(name));
        }
    }
    if doc.get("current-context").and_then(Value::as_str) == Some(name) {
        doc.insert("current-context".into(), "".into());
    }
    write_if_changed(path, before.as_deref(), &doc)
}

fn named<const N: usize>(fields: [(&str, Value); N]) -> Value {
    Value::Mapping(fields.into_iter().map(|(k, v)| (k.into(), v)).collect())
}

/// Replaces the item called `name` in `doc[list]` (keeping its position),
/// or appends it.
fn upsert(
    path: &Path,
    doc: &mut Mapping,
    list: &str,
    name: &str,
    key: &str,
    body: Value,
) -> Result<(), KubeconfigError> {
    let item = named([("name", name.into()), (key, body)]);
    let items = doc
        .entry(list.into())
        .or_insert_with(|| Value::Sequence(Vec::new()));
    if items.is_null() {
        *items = Value::Sequence(Vec::new());
    }
    let Value::Sequence(items) = items else {
        return Err(KubeconfigError::Parse {
            path: path.to_path_buf(),
            message: format!("`{list}` is not a list"),
        });
    };
    match items
        .iter_mut()
        .find(|i| i.get("name").and_then(Value::as_str) == Some(name))
    {
        Some(existing) => *existing = item,
        None => items.push(item),
    }
    Ok(())
}

/// The file's text (None when missing) and its document.
fn read(path: &Path) -> Result<(Option<String>, Mapping), KubeconfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok((None, empty_config()));
        }
        Err(source) => {
            return Err(KubeconfigError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let parse = |message: String| KubeconfigError::Parse {
        path: path.to_path_buf(),
        message,
    };
    let doc = match serde_norway::from_str::<Value>(&text).map_err(|e| parse(e.to_string()))? {
        Value::Null => empty_config(),
        Value::Mapping(m) => m,
        _ => return Err(parse("the document is not a mapping".into())),
    };
    for list in ["clusters", "users", "contexts"] {
        if !matches!(doc.get(list), None | Some(Value::Null | Value::Sequence(_))) {
            return Err(parse(format!("`{list}` is not a list")));
        }
    }
    Ok((Some(text), doc))
}

fn empty_config() -> Mapping {
    let mut doc = Mapping::new();
    doc.insert("apiVersion".into(), "v1".into());
    doc.insert("kind".into(), "Config".into());
    doc.insert("preferences".into(), Value::Mapping(Mapping::new()));
    doc
}

fn write_if_changed(
    path: &Path,
    before: Option<&str>,
    doc: &Mapping,
) -> Result<bool, KubeconfigError> {
    let write_err = |source| KubeconfigError::Write {
        path: path.to_path_buf(),
        source,
    };
    let text = serde_norway::to_string(doc).map_err(|e| KubeconfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    if before == Some(text.as_str()) {
        return Ok(false);
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(write_err)?;
    // NamedTempFile is created 0600 and renamed over the target, so the
    // kubeconfig is never readable by others, nor ever half written.
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(write_err)?;
    tmp.write_all(text.as_bytes()).map_err(write_err)?;
    tmp.as_file().sync_all().map_err(write_err)?;
    tmp.persist(path).map_err(|e| write_err(e.error))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_precedence() {
        let home = Path::new("/home/u");
        let var = std::ffi::OsStr::new("/a/one:/b/two");
        assert_eq!(
            resolve_path(Some(Path::new("/x")), Some(var), Some(home)).unwrap(),
            PathBuf::from("/x")
        );
        assert_eq!(
            resolve_path(None, Some(var), Some(home)).unwrap(),
            PathBuf::from("/a/one")
        );
        assert_eq!(
            resolve_path(None, Some(std::ffi::OsStr::new("")), Some(home)).unwrap(),
            PathBuf::from("/home/u/.kube/config")
        );
        assert!(resolve_path(None, None, None).is_err());
    }

    #[test]
    fn the_plugin_keeps_a_profile_only_when_one_is_set() {
        let exe = PathBuf::from("/bin/terrace");
        assert_eq!(
            Exec::new(exe.clone(), Some("dev")).env,
            [("AWS_PROFILE".to_string(), "dev".to_string())]
        );
        assert!(Exec::new(exe.clone(), Some("")).env.is_empty());
        assert!(Exec::new(exe, None).env.is_empty());
    }

    #[test]
    fn ca_validation() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let pem = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n";
        assert!(ca_is_pem_certificate("c", &b64(pem)).unwrap());
        assert!(!ca_is_pem_certificate("c", &b64("random bytes")).unwrap());
        assert!(ca_is_pem_certificate("c", "%%% not base64").is_err());
    }
}
