//! The moto AWS emulator for integration tests.
//!
//! One `moto_server` per test binary, on a free loopback port, started on
//! first use and killed when the test process exits. Each test takes its own
//! AWS account (an STS AssumeRole into a fresh account id, which moto keeps
//! apart), so tests running in parallel never see each other's resources.
//! `scripts/test` installs moto; a missing install fails the test loudly.
//! The server runs through `moto_server.py`, which corrects how moto 5.1
//! encodes Route53 record values (see there).
//!
//! For real Terraform runs, [`account_with_eks_shim`] puts `eks_shim.py`
//! (beside this file; it documents each gap it fills) in front of the same
//! moto: EKS access entries, pod identity associations and add-ons, which
//! moto lacks, and a few describe answers a re-plan would see as drift.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Credentials of one emulated account, and where the emulator listens.
#[derive(Clone, Debug)]
pub struct Account {
    pub endpoint: String,
    pub id: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
}

impl Account {
    /// Environment for a child process (`terrace`, `terraform`) that must
    /// talk to the emulator as this account and to nothing else.
    pub fn env(&self, region: &str) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", &self.access_key_id),
            ("AWS_SECRET_ACCESS_KEY", &self.secret_access_key),
            ("AWS_SESSION_TOKEN", &self.session_token),
            ("AWS_REGION", region),
            ("AWS_DEFAULT_REGION", region),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_CONFIG_FILE", "/dev/null"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// Makes the EKS shim answer DescribeCluster of this account's
    /// `cluster` with `endpoint` as its API server (needs
    /// [`account_with_eks_shim`]).
    pub async fn set_cluster_endpoint(&self, cluster: &str, endpoint: &str) {
        let answer = reqwest::Client::new()
            .post(format!("{}/_shim/endpoint", self.endpoint))
            .body(
                serde_json::json!({
                    "access_key": self.access_key_id,
                    "cluster": cluster,
                    "endpoint": endpoint,
                })
                .to_string(),
            )
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success());
    }

    /// An SDK config for this account in `region`.
    pub async fn sdk_config(&self, region: &str) -> aws_config::SdkConfig {
        let creds = aws_credential_types::Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            Some(self.session_token.clone()),
            None,
            "moto",
        );
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_string()))
            .endpoint_url(&self.endpoint)
            .credentials_provider(creds)
            .load()
            .await
    }
}

struct Server {
    endpoint: String,
    _child: Mutex<Child>,
}

fn moto_server_binary() -> PathBuf {
    if let Ok(path) = std::env::var("TERRACE_MOTO_SERVER") {
        return PathBuf::from(path);
    }
    let cached = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".cache/test/venv/bin/moto_server");
    if cached.is_file() {
        return cached;
    }
    PathBuf::from("moto_server")
}

/// The server must not outlive the test binary, however it exits.
/// Spawns a server that must not outlive the test process, however it
/// exits. PR_SET_PDEATHSIG fires when the *thread* that forked the child
/// exits, and each #[tokio::test] runs on its own short-lived thread, so
/// the fork happens on a thread that lives as long as the process.
fn spawn_dying_with_us(mut command: Command) -> std::io::Result<Child> {
    // SAFETY: prctl only changes this child's own death signal.
    unsafe {
        use std::os::unix::process::CommandExt;
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let (spawned_tx, spawned_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = spawned_tx.send(command.spawn());
        loop {
            std::thread::park();
        }
    });
    spawned_rx
        .recv()
        .unwrap_or_else(|_| Err(std::io::Error::other("spawner thread died")))
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let binary = moto_server_binary();
        // Through tests/support/moto_server.py (one fix for the Rust SDK)
        // with the Python that moto_server itself runs on, when it is there.
        let python = binary.with_file_name("python");
        let mut command = if python.is_file() {
            let mut c = Command::new(&python);
            c.arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/moto_server.py"));
            c
        } else {
            Command::new(&binary)
        };
        command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
            // moto issues a DNS-validated certificate once this many
            // seconds have passed, whether or not its validation record
            // exists (it never reads the zone); real ACM needs the record.
            // Tests assert the record themselves, so no waiting here.
            .env("MOTO_ACM_VALIDATION_WAIT", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = spawn_dying_with_us(command).unwrap_or_else(|e| {
            panic!(
                "cannot start {} ({e}); run scripts/test, which installs moto",
                binary.display()
            )
        });
        // Loading IAM's managed policies takes moto seconds alone, and
        // minutes on a 2-core machine that is also compiling.
        let deadline = Instant::now() + Duration::from_secs(120);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not listen on port {port} within 120 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Server {
            endpoint: format!("http://127.0.0.1:{port}"),
            _child: Mutex::new(child),
        }
    })
}

/// A fresh emulated account, empty but for the EC2 Spot service-linked
/// role (as in any account that has launched Spot before), which `up`'s
/// preflight requires with Karpenter enabled.
pub async fn account() -> Account {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let server = server();
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let id = format!(
        "{:012}",
        100_000_000_000 + u64::from(std::process::id()) * 1000 + n
    );
    let bootstrap = Account {
        endpoint: server.endpoint.clone(),
        id: "123456789012".into(),
        access_key_id: "AKIATERRACETESTBOOT1".into(),
        secret_access_key: "bootstrap".into(),
        session_token: String::new(),
    };
    let sts = aws_sdk_sts::Client::new(&bootstrap.sdk_config("us-east-1").await);
    let creds = sts
        .assume_role()
        .role_arn(format!("arn:aws:iam::{id}:role/terrace-test"))
        .role_session_name("terrace-test")
        .send()
        .await
        .expect("moto AssumeRole")
        .credentials
        .expect("credentials");
    let account = Account {
        endpoint: server.endpoint.clone(),
        id,
        access_key_id: creds.access_key_id,
        secret_access_key: creds.secret_access_key,
        session_token: creds.session_token,
    };
    // moto names service-linked roles its own way; create the real name.
    aws_sdk_iam::Client::new(&account.sdk_config("us-east-1").await)
        .create_role()
        .role_name(terrace::aws::preflight::SPOT_ROLE)
        .path("/aws-service-role/spot.amazonaws.com/")
        .assume_role_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"spot.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )
        .send()
        .await
        .expect("moto CreateRole for the Spot service-linked role");
    account
}

/// The Python that runs the shim: the one moto is installed with, which
/// `scripts/test` provides; the shim needs only the standard library.
fn python() -> PathBuf {
    if let Ok(path) = std::env::var("TERRACE_PYTHON") {
        return PathBuf::from(path);
    }
    let beside_moto = moto_server_binary().with_file_name("python");
    if beside_moto.is_file() {
        return beside_moto;
    }
    PathBuf::from("python3")
}

fn eks_shim() -> &'static Server {
    static SHIM: OnceLock<Server> = OnceLock::new();
    SHIM.get_or_init(|| {
        let upstream = &server().endpoint;
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/eks_shim.py");
        let python = python();
        let mut command = Command::new(&python);
        command
            .arg(&script)
            .args(["--upstream", upstream, "--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = spawn_dying_with_us(command).unwrap_or_else(|e| {
            panic!(
                "cannot start the EKS shim with {} ({e}); run scripts/test, which installs its Python",
                python.display()
            )
        });
        // The shim reports its port once it accepts connections.
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut line)
            .expect("read the EKS shim's port");
        let port = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("the EKS shim did not start: {line:?}"));
        Server {
            endpoint: format!("http://127.0.0.1:{port}"),
            _child: Mutex::new(child),
        }
    })
}

/// A fresh, empty emulated account whose endpoint is the EKS shim in front
/// of moto: what real Terraform runs need.
pub async fn account_with_eks_shim() -> Account {
    let mut account = account().await;
    account.endpoint = eks_shim().endpoint.clone();
    account
}
