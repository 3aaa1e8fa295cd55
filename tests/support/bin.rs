//! The `terrace` binary built from this checkout, pinned for the test run.
//!
//! `CARGO_BIN_EXE_terrace` is `<target>/debug/terrace`, which the next build
//! of *any* checkout sharing the target directory replaces (engineers here
//! share one `CARGO_TARGET_DIR`, and a binary's file name does not depend on
//! its checkout). So the binary is hard-linked once per test process to a
//! name of its own, immune to later replacement, and checked to be this
//! checkout's: dev builds keep line tables (Cargo.toml), which record the
//! directory they were compiled in.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub fn terrace() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let built = Path::new(env!("CARGO_BIN_EXE_terrace"));
        let checkout = env!("CARGO_MANIFEST_DIR");
        let pinned = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "terrace{}-{}",
            checkout.replace('/', "-"),
            module_path!().split("::").next().unwrap_or("test")
        ));
        let _ = std::fs::remove_file(&pinned);
        std::fs::hard_link(built, &pinned)
            .or_else(|_| std::fs::copy(built, &pinned).map(drop))
            .unwrap_or_else(|e| panic!("cannot pin {}: {e}", built.display()));
        let bytes = std::fs::read(&pinned).expect("read the pinned binary");
        let needle = format!("{checkout}\0");
        assert!(
            bytes
                .windows(needle.len())
                .any(|w| w == needle.as_bytes()),
            "{} was built from another checkout sharing the target directory; build this one again and rerun",
            built.display()
        );
        pinned
    })
    .clone()
}
