//! Where Terrace keeps files between runs. A leaf, so every cache follows
//! one rule.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// Terrace's cache directory: `$XDG_CACHE_HOME/terrace`, else
/// `~/.cache/terrace`. A relative or empty `XDG_CACHE_HOME` is ignored, as
/// the XDG base directory specification asks.
pub fn cache_home(xdg_cache_home: Option<&OsStr>, home: Option<&OsStr>) -> Option<PathBuf> {
    let base = xdg_cache_home
        .map(Path::new)
        .filter(|p| p.is_absolute())
        .map(Path::to_path_buf)
        .or_else(|| {
            home.filter(|h| !h.is_empty())
                .map(|h| Path::new(h).join(".cache"))
        })?;
    Some(base.join("terrace"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> Option<&OsStr> {
        Some(OsStr::new(s))
    }

    #[test]
    fn xdg_wins_when_absolute() {
        assert_eq!(
            cache_home(os("/c"), os("/h")),
            Some(PathBuf::from("/c/terrace"))
        );
        assert_eq!(
            cache_home(os("relative"), os("/h")),
            Some(PathBuf::from("/h/.cache/terrace"))
        );
        assert_eq!(
            cache_home(os(""), os("/h")),
            Some(PathBuf::from("/h/.cache/terrace"))
        );
        assert_eq!(cache_home(None, None), None);
        assert_eq!(cache_home(None, os("")), None);
    }
}
