//! Building clients: from endpoint + CA + a token source (the EKS seam),
//! with the token renewed before it expires, and from a kubeconfig context.
//! A loopback HTTP stub stands in for the API server and records the
//! `Authorization` header of every request.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use terrace::k8s::{BearerToken, Kube, TokenError, TokenSource};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CA: &[u8] = include_bytes!("fixtures/test-ca.pem");

struct Stub {
    endpoint: String,
    auth: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Answers every request with a `/version` body.
async fn api_stub() -> Stub {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let auth = Arc::new(Mutex::new(Vec::new()));
    let seen = auth.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                loop {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&request).to_string();
                    let header = head
                        .lines()
                        .find_map(|l| {
                            l.strip_prefix("authorization: ")
                                .or_else(|| l.strip_prefix("Authorization: "))
                        })
                        .unwrap_or("")
                        .to_string();
                    seen.lock().unwrap().push(header);
                    let body = r#"{"major":"1","minor":"34","gitVersion":"v1.34.0-eks","gitCommit":"","gitTreeState":"","buildDate":"2026-01-01T00:00:00Z","goVersion":"go1.24","compiler":"gc","platform":"linux/amd64"}"#;
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if stream.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Stub {
        endpoint,
        auth,
        task,
    }
}

/// Hands out `token-1`, `token-2`, … each valid for `lifetime`.
fn counting_source(lifetime: Duration) -> (Arc<dyn TokenSource>, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let source: Arc<dyn TokenSource> = Arc::new(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            Ok::<_, TokenError>(BearerToken::new(
                format!("token-{n}"),
                SystemTime::now() + lifetime,
            ))
        }
    });
    (source, calls)
}

#[tokio::test]
async fn a_token_is_reused_until_it_nears_expiry() {
    terrace::tls::install_crypto_provider();
    let stub = api_stub().await;
    let (source, calls) = counting_source(Duration::from_secs(15 * 60));
    let kube = Kube::from_parts(&stub.endpoint, CA, source).unwrap();
    for _ in 0..3 {
        kube.client()
            .await
            .unwrap()
            .apiserver_version()
            .await
            .unwrap();
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(*stub.auth.lock().unwrap(), vec!["Bearer token-1"; 3]);
}

#[tokio::test]
async fn an_expiring_token_is_replaced_before_the_next_request() {
    terrace::tls::install_crypto_provider();
    let stub = api_stub().await;
    // Inside the refresh margin from the start: every request needs a new one.
    let (source, calls) = counting_source(Duration::from_secs(30));
    let kube = Kube::from_parts(&stub.endpoint, CA, source).unwrap();
    kube.client()
        .await
        .unwrap()
        .apiserver_version()
        .await
        .unwrap();
    kube.client()
        .await
        .unwrap()
        .apiserver_version()
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(
        *stub.auth.lock().unwrap(),
        ["Bearer token-1", "Bearer token-2"]
    );
}

#[tokio::test]
async fn a_failing_token_source_is_reported() {
    terrace::tls::install_crypto_provider();
    let source: Arc<dyn TokenSource> =
        Arc::new(|| async { Err::<BearerToken, TokenError>("no AWS credentials".into()) });
    let kube = Kube::from_parts("https://example.eks.amazonaws.com", CA, source).unwrap();
    let err = kube.client().await.err().unwrap();
    assert_eq!(err.to_string(), "bearer token: no AWS credentials");
}

#[tokio::test]
async fn a_kubeconfig_context_is_used() {
    terrace::tls::install_crypto_provider();
    let stub = api_stub().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: other\nclusters:\n- name: c\n  cluster: {{ server: \"{}\" }}\n- name: o\n  cluster: {{ server: \"http://127.0.0.1:9\" }}\ncontexts:\n- name: mine\n  context: {{ cluster: c, user: u }}\n- name: other\n  context: {{ cluster: o, user: u }}\nusers:\n- name: u\n  user: {{ token: kubeconfig-token }}\n",
            stub.endpoint
        ),
    )
    .unwrap();
    let kube = Kube::from_kubeconfig(Some(&path), Some("mine"))
        .await
        .unwrap();
    kube.client()
        .await
        .unwrap()
        .apiserver_version()
        .await
        .unwrap();
    assert_eq!(*stub.auth.lock().unwrap(), ["Bearer kubeconfig-token"]);

    let err = Kube::from_kubeconfig(Some(&path), Some("missing"))
        .await
        .err()
        .unwrap();
    assert!(err.to_string().starts_with("kubeconfig:"), "{err}");
    assert!(err.to_string().contains("missing"), "{err}");
}
