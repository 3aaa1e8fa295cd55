//! Real Terraform in tests: the provider mirror and a CLI config using it.

use std::path::{Path, PathBuf};

/// The filesystem mirror holding `registry.terraform.io/hashicorp/aws`:
/// `TERRACE_TF_PROVIDER_MIRROR` (exported by scripts/test), else the usual
/// places a machine image puts one.
pub fn provider_mirror() -> PathBuf {
    let has_aws = |dir: &Path| dir.join("registry.terraform.io/hashicorp/aws").is_dir();
    if let Some(dir) = std::env::var_os("TERRACE_TF_PROVIDER_MIRROR") {
        let dir = PathBuf::from(dir);
        assert!(
            has_aws(&dir),
            "TERRACE_TF_PROVIDER_MIRROR={} holds no registry.terraform.io/hashicorp/aws/",
            dir.display()
        );
        return dir;
    }
    let home = std::env::var("HOME").unwrap_or_default();
    [
        PathBuf::from("/opt/tf-plugins"),
        Path::new(&home).join(".terraform.d/plugins"),
        PathBuf::from("/usr/local/share/terraform/plugins"),
        PathBuf::from("/usr/share/terraform/plugins"),
    ]
    .into_iter()
    .find(|d| has_aws(d))
    .unwrap_or_else(|| {
        panic!(
            "no hashicorp/aws provider mirror found: run scripts/test, or set \
             TERRACE_TF_PROVIDER_MIRROR to a directory holding \
             registry.terraform.io/hashicorp/aws/<version>/<os_arch>/"
        )
    })
}

/// Writes a Terraform CLI config in `dir` that installs providers from the
/// mirror only, so nothing is downloaded; returns its path.
pub fn cli_config(dir: &Path) -> PathBuf {
    let rc = dir.join("terraform.rc");
    std::fs::write(
        &rc,
        format!(
            "provider_installation {{\n  filesystem_mirror {{\n    path = \"{}\"\n  }}\n}}\n",
            provider_mirror().display()
        ),
    )
    .unwrap();
    rc
}
