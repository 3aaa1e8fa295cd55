//! The fake `terraform` in tests/fake-terraform/, and a runner wired to it.
//!
//! Every knob of the fake is an environment variable (documented at the top
//! of the script); they are passed per runner, never set on the test
//! process, so tests run in parallel.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use terrace::terraform::{Runner, Terraform};

pub fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fake-terraform/terraform")
}

/// A cluster work directory with an empty `terraform/` and the fake's
/// invocation log, both removed when dropped.
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("work/terraform")).unwrap();
        Fixture { dir }
    }

    pub fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    pub fn log(&self) -> PathBuf {
        self.dir.path().join("invocations.jsonl")
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A runner on the fake with no AWS endpoint override, a private plugin
    /// cache location and the invocation log on.
    pub fn runner(&self, fake_env: &[(&str, &str)]) -> Runner {
        let terraform = Terraform::at(&path()).expect("fake terraform answers version -json");
        let rc = self.file("terraform.rc");
        std::fs::write(&rc, "disable_checkpoint = true\n").unwrap();
        let mut runner = Runner::new(terraform, &self.work())
            .with_env("FAKE_TF_LOG", self.log().to_str().unwrap())
            .with_env("XDG_CACHE_HOME", self.file("cache").to_str().unwrap())
            .with_env("TF_CLI_CONFIG_FILE", rc.to_str().unwrap())
            .with_env("AWS_ENDPOINT_URL", "")
            .with_env("AWS_ENDPOINT_URL_S3", "");
        for (k, v) in fake_env {
            runner = runner.with_env(k, v);
        }
        runner
    }

    /// Every invocation the fake recorded, in order.
    pub fn invocations(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.log())
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// Waits (polling, bounded) until `path` exists.
pub async fn wait_for_file(path: &Path, within: Duration) {
    let deadline = Instant::now() + within;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} did not appear",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
