//! Release manifests (Argo CD's `install.yaml`): read from the pinned URL, a
//! mirror URL or a local file, verified against the pinned SHA-256 before
//! anything uses them, and cached by hash so a re-run needs no network.
//!
//! Nothing here talks to a cluster: a body that fails verification never
//! leaves this module.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::ReleaseManifest;

/// Generous: the file is about 2 MB, mirrors can be slow.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(300);

/// Where a release manifest comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestSource {
    /// The URL pinned in the addon's `addon.yaml`.
    Pinned,
    Url(String),
    File(PathBuf),
}

impl ManifestSource {
    /// `--argocd-manifest` takes a URL (`http://`, `https://`) or a path.
    pub fn parse(arg: &str) -> ManifestSource {
        if arg.starts_with("https://") || arg.starts_with("http://") {
            ManifestSource::Url(arg.to_string())
        } else {
            ManifestSource::File(PathBuf::from(arg))
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error(
        "refusing to apply {origin}: its SHA-256 is {actual}, expected {expected}; the file was changed or corrupted in transit (to install a different build on purpose, pass its hash with --argocd-sha256)"
    )]
    Checksum {
        origin: String,
        expected: String,
        actual: String,
    },
    #[error("cannot download {url}: {message}")]
    Download { url: String, message: String },
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin}: not UTF-8 text")]
    NotText { origin: String },
    #[error("--argocd-sha256 {0:?}: expected 64 hexadecimal digits")]
    BadHash(String),
}

/// A verified release manifest.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub text: String,
    pub sha256: String,
    /// Where the bytes came from: a URL, a path, or the cache file.
    pub origin: String,
    pub from_cache: bool,
    /// Set when the verified copy could not be cached (the install goes on).
    pub cache_warning: Option<String>,
}

/// Checks an expected hash given on the command line.
pub fn parse_sha256(text: &str) -> Result<String, ReleaseError> {
    let lower = text.trim().to_ascii_lowercase();
    if lower.len() == 64 && lower.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(lower)
    } else {
        Err(ReleaseError::BadHash(text.to_string()))
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Returns the manifest whose SHA-256 is `expected` (default: the pinned
/// hash), from the cache when it holds it, else from `source`.
pub async fn fetch(
    pinned: &ReleaseManifest,
    source: &ManifestSource,
    expected: Option<&str>,
    cache_dir: Option<&Path>,
) -> Result<Fetched, ReleaseError> {
    let expected = match expected {
        Some(hash) => parse_sha256(hash)?,
        None => parse_sha256(&pinned.sha256)?,
    };
    let cache_file = cache_dir.map(|dir| dir.join(format!("{expected}.yaml")));
    if let Some(file) = &cache_file
        && let Ok(bytes) = std::fs::read(file)
    {
        if sha256_hex(&bytes) == expected {
            let origin = file.display().to_string();
            return Ok(Fetched {
                text: into_text(bytes, &origin)?,
                sha256: expected,
                origin,
                from_cache: true,
                cache_warning: None,
            });
        }
        // A damaged cache entry is replaced by a fresh, verified copy.
        let _ = std::fs::remove_file(file);
    }

    let (bytes, origin) = match source {
        ManifestSource::Pinned => (download(&pinned.url).await?, pinned.url.clone()),
        ManifestSource::Url(url) => (download(url).await?, url.clone()),
        ManifestSource::File(path) => (
            std::fs::read(path).map_err(|source| ReleaseError::Read {
                path: path.clone(),
                source,
            })?,
            path.display().to_string(),
        ),
    };
    let actual = sha256_hex(&bytes);
    if actual != expected {
        return Err(ReleaseError::Checksum {
            origin,
            expected,
            actual,
        });
    }
    let cache_warning = cache_file
        .as_deref()
        .and_then(|file| store(file, &bytes).err())
        .map(|e| format!("cannot cache the verified manifest: {e}"));
    Ok(Fetched {
        text: into_text(bytes, &origin)?,
        sha256: expected,
        origin,
        from_cache: false,
        cache_warning,
    })
}

fn into_text(bytes: Vec<u8>, origin: &str) -> Result<String, ReleaseError> {
    String::from_utf8(bytes).map_err(|_| ReleaseError::NotText {
        origin: origin.to_string(),
    })
}

async fn download(url: &str) -> Result<Vec<u8>, ReleaseError> {
    let failed = |message: String| ReleaseError::Download {
        url: url.to_string(),
        message,
    };
    crate::tls::install_crypto_provider();
    let client = reqwest::Client::builder()
        .timeout(DOWNLOAD_TIMEOUT)
        .user_agent(concat!("terrace/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| failed(e.to_string()))?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| failed(error_chain(&e)))?;
    let status = response.status();
    if !status.is_success() {
        return Err(failed(format!("HTTP {status}")));
    }
    let body = response
        .bytes()
        .await
        .map_err(|e| failed(error_chain(&e)))?;
    Ok(body.to_vec())
}

/// reqwest's top-level message ("error sending request") hides the cause.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Writes the cache entry atomically, so a concurrent run never reads half a file.
fn store(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = file.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(file).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pinned(body: &[u8]) -> ReleaseManifest {
        ReleaseManifest {
            version: "v0".into(),
            url: "http://127.0.0.1:9/unused".into(),
            sha256: sha256_hex(body),
        }
    }

    #[test]
    fn sources_and_hashes_parse() {
        assert_eq!(
            ManifestSource::parse("https://mirror/install.yaml"),
            ManifestSource::Url("https://mirror/install.yaml".into())
        );
        assert_eq!(
            ManifestSource::parse("./install.yaml"),
            ManifestSource::File("./install.yaml".into())
        );
        assert!(parse_sha256(&"AB".repeat(32)).is_ok());
        assert!(parse_sha256("abc").is_err());
    }

    #[tokio::test]
    async fn a_file_is_verified_and_cached() {
        let tmp = tempfile::tempdir().unwrap();
        let body = b"kind: ConfigMap\n";
        let file = tmp.path().join("install.yaml");
        std::fs::write(&file, body).unwrap();
        let cache = tmp.path().join("cache");
        let got = fetch(
            &pinned(body),
            &ManifestSource::File(file.clone()),
            None,
            Some(&cache),
        )
        .await
        .unwrap();
        assert!(!got.from_cache);
        std::fs::remove_file(&file).unwrap();
        let again = fetch(
            &pinned(body),
            &ManifestSource::File(file),
            None,
            Some(&cache),
        )
        .await
        .unwrap();
        assert!(again.from_cache);
        assert_eq!(again.text, "kind: ConfigMap\n");
    }

    #[tokio::test]
    async fn a_changed_file_is_refused_and_not_cached() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("install.yaml");
        std::fs::write(&file, b"kind: Secret\n").unwrap();
        let cache = tmp.path().join("cache");
        let err = fetch(
            &pinned(b"kind: ConfigMap\n"),
            &ManifestSource::File(file),
            None,
            Some(&cache),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ReleaseError::Checksum { .. }), "{err}");
        assert!(err.to_string().starts_with("refusing to apply"), "{err}");
        assert!(!cache.exists());
    }

    #[tokio::test]
    async fn a_damaged_cache_entry_is_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let body = b"kind: ConfigMap\n";
        let manifest = pinned(body);
        let cache = tmp.path().join("cache");
        std::fs::create_dir_all(&cache).unwrap();
        std::fs::write(cache.join(format!("{}.yaml", manifest.sha256)), b"tampered").unwrap();
        let file = tmp.path().join("install.yaml");
        std::fs::write(&file, body).unwrap();
        let got = fetch(&manifest, &ManifestSource::File(file), None, Some(&cache))
            .await
            .unwrap();
        assert!(!got.from_cache);
        assert_eq!(
            std::fs::read(cache.join(format!("{}.yaml", manifest.sha256))).unwrap(),
            body
        );
    }
}
