//! Finding the Terraform binary and checking its version.
//!
//! `TERRACE_TERRAFORM` names it explicitly; otherwise `terraform` on `PATH`,
//! then `tofu` (both read by `ops::Env` and passed in). OpenTofu answers `version -json` with the same
//! `terraform_version` field.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The oldest Terraform with S3-native state locking (`use_lockfile`).
pub const MIN_VERSION: Version = Version {
    major: 1,
    minor: 10,
    patch: 0,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

impl Version {
    /// Parses `1.11.4`, `v1.10.0` or `1.12.0-beta1` (pre-release dropped).
    pub fn parse(s: &str) -> Option<Version> {
        let s = s.trim().trim_start_matches('v');
        let core = s.split(['-', '+']).next()?;
        let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
        let version = Version {
            major: parts.next()??,
            minor: parts.next()??,
            patch: parts.next().flatten().unwrap_or(0),
        };
        Some(version)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum BinaryError {
    #[error(
        "no terraform found: install Terraform >= {MIN_VERSION} (or OpenTofu) on PATH, or set TERRACE_TERRAFORM to its path"
    )]
    NotFound,
    #[error("{}: cannot run `version -json`: {reason}", path.display())]
    Unusable { path: PathBuf, reason: String },
    #[error("{} is version {found}; Terrace needs >= {MIN_VERSION} (S3-native state locking)", path.display())]
    TooOld { path: PathBuf, found: Version },
}

/// A Terraform (or OpenTofu) binary that is recent enough.
#[derive(Debug, Clone)]
pub struct Terraform {
    pub path: PathBuf,
    pub version: Version,
}

impl Terraform {
    /// Finds the binary: `explicit` (`TERRACE_TERRAFORM`) if set, else on
    /// `path_var`; and checks its version.
    pub fn find_in(
        explicit: Option<OsString>,
        path_var: Option<OsString>,
    ) -> Result<Terraform, BinaryError> {
        let path = locate(explicit, path_var).ok_or(BinaryError::NotFound)?;
        Terraform::at(&path)
    }

    /// Checks the binary at `path`.
    pub fn at(path: &Path) -> Result<Terraform, BinaryError> {
        let unusable = |reason: String| BinaryError::Unusable {
            path: path.to_path_buf(),
            reason,
        };
        let out = Command::new(path)
            .args(["version", "-json"])
            .env("CHECKPOINT_DISABLE", "1")
            .output()
            .map_err(|e| unusable(e.to_string()))?;
        if !out.status.success() {
            return Err(unusable(
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ));
        }
        let json: serde_json::Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| unusable(format!("output is not JSON: {e}")))?;
        let found = json["terraform_version"]
            .as_str()
            .and_then(Version::parse)
            .ok_or_else(|| unusable("no terraform_version in its output".into()))?;
        if found < MIN_VERSION {
            return Err(BinaryError::TooOld {
                path: path.to_path_buf(),
                found,
            });
        }
        Ok(Terraform {
            path: path.to_path_buf(),
            version: found,
        })
    }
}

/// `explicit` if set, else the first `terraform`, then `tofu`, on `path_var`.
fn locate(explicit: Option<OsString>, path_var: Option<OsString>) -> Option<PathBuf> {
    if let Some(explicit) = explicit.filter(|e| !e.is_empty()) {
        return Some(PathBuf::from(explicit));
    }
    let dirs: Vec<PathBuf> = path_var
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    ["terraform", "tofu"].iter().find_map(|name| {
        dirs.iter()
            .map(|d| d.join(name))
            .find(|candidate| is_executable(candidate))
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn versions() {
        assert_eq!(
            Version::parse("1.11.4"),
            Some(Version {
                major: 1,
                minor: 11,
                patch: 4
            })
        );
        assert_eq!(
            Version::parse("v1.10.0-beta1").unwrap().to_string(),
            "1.10.0"
        );
        assert!(Version::parse("1.9.8").unwrap() < MIN_VERSION);
        assert_eq!(Version::parse("banana"), None);
    }

    fn script(dir: &Path, name: &str, version: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(
            &path,
            format!("#!/bin/sh\necho '{{\"terraform_version\":\"{version}\"}}'\n"),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn locates_terraform_before_tofu_and_honours_the_override() {
        let tmp = tempfile::tempdir().unwrap();
        let tofu = script(tmp.path(), "tofu", "1.10.0");
        let path = Some(tmp.path().as_os_str().to_owned());
        assert_eq!(locate(None, path.clone()), Some(tofu.clone()));
        let terraform = script(tmp.path(), "terraform", "1.11.4");
        assert_eq!(locate(None, path.clone()), Some(terraform));
        assert_eq!(
            locate(Some("/opt/tf".into()), path),
            Some(PathBuf::from("/opt/tf"))
        );
        assert_eq!(locate(None, Some("/nonexistent".into())), None);
    }

    #[test]
    fn checks_the_version() {
        let tmp = tempfile::tempdir().unwrap();
        let good = script(tmp.path(), "good", "1.11.4");
        assert_eq!(Terraform::at(&good).unwrap().version.to_string(), "1.11.4");
        let old = script(tmp.path(), "old", "1.9.8");
        assert!(matches!(
            Terraform::at(&old),
            Err(BinaryError::TooOld { .. })
        ));
        assert!(matches!(
            Terraform::at(Path::new("/nonexistent/terraform")),
            Err(BinaryError::Unusable { .. })
        ));
    }
}
