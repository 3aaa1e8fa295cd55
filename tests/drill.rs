//! A drill's judgement and report without AWS: the baseline and the wait
//! for recovery against the in-memory cluster with a simulated Argo CD,
//! and the Markdown report (snapshot) and SVG timeline (well-formed XML,
//! one bar per phase) of a fixed report. The whole drill against the
//! emulator is in `drill_emulator.rs`.

mod support;

use std::time::Duration;

use support::kube::{AppOutcome, Behaviour, FakeCluster};
use terrace::addons::health::{ApplicationSource, ApplicationState};
use terrace::drill::{
    self, Milestones, NotBack, Phase, PhaseOutcome, RecoveryError, Report, Rto, report,
};
use terrace::wait::Backoff;

const REPO: &str = "https://github.com/acme/platform.git";
const FAST: Backoff = Backoff {
    initial: Duration::from_millis(10),
    max: Duration::from_millis(50),
    factor: 2.0,
};

/// A cluster whose simulated Argo CD runs `apps` (all in `argocd`, except
/// `billing` in `team-a`), with `behaviour`'s outcomes.
async fn cluster(behaviour: Behaviour, apps: &[&str]) -> FakeCluster {
    let cluster = FakeCluster::running(behaviour).await;
    for app in apps {
        let namespace = if *app == "billing" {
            "team-a"
        } else {
            "argocd"
        };
        cluster
            .add_application(namespace, app, REPO, &format!("apps/{app}"), "main")
            .await;
    }
    cluster
}

/// Polls until the simulator has given every Application a status.
async fn settled(cluster: &FakeCluster, count: usize) -> Vec<ApplicationState> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let apps = drill::baseline(&cluster.kube).await.unwrap();
        if apps.len() == count
            && apps
                .iter()
                .all(|a| a.health != "Unknown" && a.health != "Progressing")
            || tokio::time::Instant::now() > deadline
        {
            return apps;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn after(delay_ms: u64) -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_millis(delay_ms)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_that_never_comes_back_is_named_when_the_deadline_passes() {
    let mut behaviour = Behaviour::default();
    behaviour.apps.insert(
        "broken".into(),
        AppOutcome::Degraded(Duration::ZERO, "CrashLoopBackOff".into()),
    );
    let source = cluster(behaviour, &["web", "payments", "billing", "broken"]).await;
    let baseline = settled(&source, 4).await;
    assert_eq!(drill::required(&baseline).count(), 3, "{baseline:?}");

    let mut behaviour = Behaviour::default();
    behaviour.apps.insert(
        "payments".into(),
        AppOutcome::Stuck("secret payments/db not found".into()),
    );
    let recovered = cluster(behaviour, &["web", "payments", "billing"]).await;
    let started = std::time::Instant::now();
    let err = drill::await_recovery(&recovered.kube, &baseline, after(1500), &FAST)
        .await
        .unwrap_err();
    assert!(
        started.elapsed() >= Duration::from_millis(1400),
        "waited to the deadline"
    );
    let RecoveryError::NotBack(missing) = err else {
        panic!("{err}");
    };
    assert_eq!(
        missing,
        [NotBack {
            application: "argocd/payments".into(),
            reason: missing[0].reason.clone(),
        }],
        "only the stuck one; `broken` was not healthy before the drill"
    );
    assert!(
        missing[0].reason.contains("secret payments/db not found"),
        "{missing:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_waits_until_every_application_is_back_from_the_same_source() {
    let source = cluster(Behaviour::default(), &["web", "payments", "billing"]).await;
    let baseline = settled(&source, 3).await;
    assert!(
        baseline.iter().all(ApplicationState::healthy),
        "{baseline:?}"
    );
    assert_eq!(baseline[0].id(), "argocd/payments");
    assert_eq!(baseline[0].revision, "main");
    assert_eq!(baseline[0].source.path, "apps/payments");
    assert_eq!(baseline[2].id(), "team-a/billing");

    // Empty at first, as a new cluster is until Argo CD brings them back;
    // one comes from another revision of the repository.
    let behaviour = Behaviour {
        default_app: AppOutcome::Healthy(Duration::from_millis(300)),
        ..Behaviour::default()
    };
    let recovered = FakeCluster::running(behaviour).await;
    let adding = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        recovered
            .add_application("argocd", "web", REPO, "apps/web", "main")
            .await;
        recovered
            .add_application("team-a", "billing", REPO, "apps/billing", "main")
            .await;
        recovered
            .add_application("argocd", "payments", REPO, "apps/payments", "release-2")
            .await;
    };
    let (result, ()) = tokio::join!(
        drill::await_recovery(&recovered.kube, &baseline, after(2000), &FAST),
        adding
    );
    let RecoveryError::NotBack(missing) = result.unwrap_err() else {
        panic!("not a timeout");
    };
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert!(
        missing[0].reason.contains("its source changed")
            && missing[0].reason.contains("@release-2"),
        "{missing:?}"
    );

    let back = FakeCluster::running(Behaviour::default()).await;
    for (ns, app) in [
        ("argocd", "web"),
        ("argocd", "payments"),
        ("team-a", "billing"),
    ] {
        back.add_application(ns, app, REPO, &format!("apps/{app}"), "main")
            .await;
    }
    let now = drill::await_recovery(&back.kube, &baseline, after(30_000), &FAST)
        .await
        .unwrap();
    assert_eq!(now.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_that_does_not_answer_is_waited_for_and_named() {
    let source = cluster(Behaviour::default(), &["web"]).await;
    let baseline = settled(&source, 1).await;
    let config = tempfile::tempdir().unwrap();
    let path = support::kube::kubeconfig(config.path(), "http://127.0.0.1:9");
    let kube = terrace::k8s::Kube::from_kubeconfig(Some(&path), None)
        .await
        .unwrap();
    let RecoveryError::NotBack(missing) =
        drill::await_recovery(&kube, &baseline, after(300), &FAST)
            .await
            .unwrap_err()
    else {
        panic!("not a timeout");
    };
    assert_eq!(missing[0].application, "argocd/web");
    assert!(missing[0].reason.contains("did not answer"), "{missing:?}");
}

fn app(namespace: &str, name: &str, health: &str) -> ApplicationState {
    ApplicationState {
        namespace: namespace.into(),
        name: name.into(),
        sync: if health == "Healthy" {
            "Synced"
        } else {
            "OutOfSync"
        }
        .into(),
        health: health.into(),
        revision: "4f1c2a9".into(),
        source: ApplicationSource {
            repo: REPO.into(),
            path: format!("apps/{name}"),
            chart: String::new(),
            target_revision: "main".into(),
        },
        message: (health != "Healthy").then(|| format!("sync=OutOfSync health={health}")),
    }
}

fn phase(name: &str, start: f64, end: f64, outcome: PhaseOutcome) -> Phase {
    Phase {
        name: name.into(),
        start,
        end,
        outcome,
        note: None,
    }
}

/// A drill that recovered everything but `payments`, after 21m40s
/// against a 20-minute target.
fn failed_drill() -> Report {
    Report {
        cluster: "acme-us-east-1".into(),
        region: "us-east-1".into(),
        recovered_cluster: "acme-us-west-2".into(),
        recovered_region: "us-west-2".into(),
        started: "2026-12-03T02:00:00Z".into(),
        started_ms: 1_796_263_200_000,
        phases: vec![
            phase("baseline", 0.0, 3.2, PhaseOutcome::Done),
            Phase {
                note: Some("acme-us-east-1 in us-east-1 left alone, as if the region were lost".into()),
                ..phase("disaster", 3.2, 3.2, PhaseOutcome::Skipped)
            },
            phase("recovery", 3.2, 1023.2, PhaseOutcome::Done),
            phase("applications", 1023.2, 1303.2, PhaseOutcome::Failed),
        ],
        milestones: Milestones {
            control_plane: Some(545.0),
            nodes: Some(790.0),
            addons: Some(1010.0),
            last_application: None,
        },
        rto: Rto::judge(Duration::from_secs(1200), 1300.0, false),
        baseline: vec![
            app("argocd", "external-dns", "Healthy"),
            app("argocd", "payments", "Healthy"),
            app("argocd", "legacy", "Degraded"),
            app("team-a", "billing", "Healthy"),
        ],
        not_back: vec![NotBack {
            application: "argocd/payments".into(),
            reason: "sync=OutOfSync health=Progressing; condition SyncError: secret payments/db not found".into(),
        }],
        error: None,
        passed: false,
    }
}

#[test]
fn the_markdown_report_names_every_phase_the_rto_and_what_did_not_come_back() {
    let report = failed_drill();
    assert_eq!(report.file_stem(), "drill-acme-us-east-1-20261203T020000Z");
    insta::assert_snapshot!("failed_drill_markdown", report::markdown(&report));
}

/// Checks `svg` is well-formed XML (every element closed in order, one
/// root) and returns the `data-phase` of each bar and whether the RTO
/// target line is there.
fn parse_svg(svg: &str) -> (Vec<String>, bool) {
    let mut open: Vec<String> = Vec::new();
    let mut roots = 0;
    let mut bars = Vec::new();
    let mut target = false;
    let mut element = String::new();
    let mut is_bar = false;
    for token in xmlparser::Tokenizer::from(svg) {
        match token.unwrap_or_else(|e| panic!("not well-formed XML: {e}\n{svg}")) {
            xmlparser::Token::ElementStart { local, .. } => {
                if open.is_empty() {
                    roots += 1;
                }
                element = local.to_string();
                is_bar = false;
                open.push(element.clone());
            }
            xmlparser::Token::Attribute { local, value, .. } => {
                if element == "rect" && local.as_str() == "class" && value.as_str() == "phase" {
                    is_bar = true;
                }
                if is_bar && local.as_str() == "data-phase" {
                    bars.push(value.to_string());
                }
                if element == "line" && local.as_str() == "class" && value.as_str() == "rto-target"
                {
                    target = true;
                }
            }
            xmlparser::Token::ElementEnd { end, .. } => match end {
                xmlparser::ElementEnd::Open => {}
                xmlparser::ElementEnd::Empty => {
                    open.pop();
                }
                xmlparser::ElementEnd::Close(_, name) => {
                    assert_eq!(open.pop().as_deref(), Some(name.as_str()), "{svg}");
                }
            },
            _ => {}
        }
    }
    assert!(open.is_empty(), "unclosed: {open:?}");
    assert_eq!(roots, 1);
    (bars, target)
}

#[test]
fn the_svg_timeline_is_well_formed_with_one_bar_per_phase_and_the_rto_line() {
    let mut report = failed_drill();
    report.not_back[0].reason = "<script>&\"quoted\"</script>".into();
    report.phases[3].note = Some("1 not back & <late>".into());
    let svg = report::svg(&report);
    let (bars, target) = parse_svg(&svg);
    assert_eq!(bars, ["baseline", "disaster", "recovery", "applications"]);
    assert!(target, "the RTO target line: {svg}");
    assert!(svg.contains("RTO target 20m00s"), "{svg}");

    // The line sits at the recovery's start plus the target, on the same
    // scale as the bars: past the end of `recovery`'s bar, before the end
    // of `applications`.
    let x_of = |needle: &str, attribute: &str| -> f64 {
        let at = svg.find(needle).unwrap();
        let rest = &svg[at..];
        let start = rest.find(&format!("{attribute}=\"")).unwrap() + attribute.len() + 2;
        rest[start..].split('"').next().unwrap().parse().unwrap()
    };
    let line = x_of("class=\"rto-target\"", "x1");
    let recovery = x_of("data-phase=\"recovery\"", "x");
    let applications = x_of("data-phase=\"applications\"", "x");
    assert!(recovery < line && applications < line, "{svg}");
}

#[test]
fn a_passing_drill_has_nothing_missing() {
    let mut report = failed_drill();
    report.not_back.clear();
    report.rto = Rto::judge(Duration::from_secs(1800), 1100.0, true);
    report.milestones.last_application = Some(1100.0);
    report.phases[3].outcome = PhaseOutcome::Done;
    report.passed = true;
    assert!(report.failures().is_empty());
    let md = report::markdown(&report);
    assert!(
        md.contains("**PASSED**: recovered in 18m20s, within the 30m00s target."),
        "{md}"
    );
    assert!(
        md.contains("Nothing: every Application of the baseline is back."),
        "{md}"
    );
    let (bars, _) = parse_svg(&report::svg(&report));
    assert_eq!(bars.len(), 4);
}
