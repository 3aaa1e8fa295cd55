//! One TLS crypto provider for the whole process.
//!
//! The AWS SDK, kube and reqwest all use rustls. When more than one rustls
//! crypto provider is compiled in (test builds pull in `ring` through
//! dev-dependencies), rustls cannot choose and panics on first use, so every
//! entry point installs aws-lc-rs explicitly before building a client.

/// Installs aws-lc-rs as the process default; later calls do nothing.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
