//! The shared directory (`$TERRACE_SHARED`, default `../shared`): the real
//! Argo CD release manifest under `vendor/` and the schema checkers under
//! `tools/`. A missing file fails the test, so a broken checkout or
//! `TERRACE_SHARED` cannot pass silently; where the shared directory is
//! known to be absent, `TERRACE_SKIP_VENDORED=1` skips it, saying so.

use std::path::PathBuf;

pub fn shared() -> PathBuf {
    std::env::var_os("TERRACE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"))
}

/// `path` below the shared directory, or `None` when it is missing and
/// `TERRACE_SKIP_VENDORED=1`; panics when it is missing otherwise.
pub fn file(path: &str) -> Option<PathBuf> {
    let path = shared().join(path);
    match std::fs::metadata(&path) {
        Ok(_) => Some(path),
        Err(e) if std::env::var_os("TERRACE_SKIP_VENDORED").is_some_and(|v| v == "1") => {
            println!("skipped (TERRACE_SKIP_VENDORED=1): {}: {e}", path.display());
            None
        }
        Err(e) => panic!(
            "{}: {e}; set TERRACE_SHARED to the shared directory, or TERRACE_SKIP_VENDORED=1 to skip this test",
            path.display()
        ),
    }
}

/// The vendored Argo CD v3.5.1 `install.yaml` and its bytes.
pub fn argocd_manifest() -> Option<(PathBuf, Vec<u8>)> {
    let path = file("vendor/argocd-v3.5.1-install.yaml")?;
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Some((path, bytes))
}
