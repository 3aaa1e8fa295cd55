//! What a person sees: the real binary in a pseudo-terminal, running `up`
//! against moto with the fake terraform (a multi-line warning from init,
//! a progress tick every 100 ms during apply), and its output parsed by a
//! VT emulator so the assertions are about the screen, not the bytes.

mod support;

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, ExitStatus};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const REGION: &str = "us-east-1";
const SPINNER: &[char] = &['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
/// Tall enough that nothing scrolls off: the whole run stays on screen.
const ROWS: u16 = 200;

/// A pseudo-terminal of `cols` columns: (controller, terminal).
fn pty(cols: u16) -> (OwnedFd, OwnedFd) {
    let (mut controller, mut terminal) = (0, 0);
    let size = libc::winsize {
        ws_row: ROWS,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two descriptors it opened into the pointers
    // given; the name and termios pointers may be null.
    let rc = unsafe {
        libc::openpty(
            &mut controller,
            &mut terminal,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors are fresh and owned by nobody else.
    unsafe {
        (
            OwnedFd::from_raw_fd(controller),
            OwnedFd::from_raw_fd(terminal),
        )
    }
}

struct Run {
    screen: vt100::Parser,
    status: ExitStatus,
    /// Whether a live line (a row starting with a spinner) ever ran on
    /// into the next row.
    live_line_wrapped: bool,
    /// How many live lines the screens taken during the run showed.
    ticks_seen: usize,
    /// The most live lines one screen showed at once.
    most_live: usize,
}

impl Run {
    fn rows(&self) -> Vec<String> {
        let cols = self.screen.screen().size().1.get();
        self.screen
            .screen()
            .rows(0, cols)
            .map(|r| r.trim_end().to_string())
            .filter(|r| !r.is_empty())
            .collect()
    }

    fn count(&self, text: &str) -> usize {
        self.rows().iter().filter(|r| r.contains(text)).count()
    }
}

/// Runs terrace with `args` in a terminal `cols` wide, watching the screen.
async fn run(cols: u16, args: &[&str], fake: &[(&str, &str)]) -> Run {
    let account = support::moto::account().await;
    let home = tempfile::tempdir().unwrap();
    let rc = support::terraform::cli_config(home.path());
    let (controller, terminal) = pty(cols);
    let mut command = Command::new(env!("CARGO_BIN_EXE_terrace"));
    command
        .args(args)
        .current_dir(home.path())
        .envs(account.env(REGION))
        .env("HOME", home.path())
        .env("TF_CLI_CONFIG_FILE", &rc)
        .env("KUBECONFIG", "")
        .env("TERRACE_TERRAFORM", support::fake_terraform::path())
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR")
        .envs(fake.iter().copied())
        .stdin(terminal.try_clone().unwrap())
        .stdout(terminal.try_clone().unwrap())
        .stderr(terminal);
    let mut child = command.spawn().expect("terrace runs");
    drop(command); // the terminal's last descriptor here: EOF once terrace exits

    let parser = Arc::new(Mutex::new(vt100::Parser::new(
        ROWS.try_into().unwrap(),
        cols.try_into().unwrap(),
        0,
    )));
    let reader = {
        let parser = parser.clone();
        let mut controller = std::fs::File::from(controller);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with EIO when the terminal side is closed.
            while let Ok(n @ 1..) = controller.read(&mut buf) {
                parser.lock().unwrap().process(&buf[..n]);
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let (mut live_line_wrapped, mut ticks_seen, mut most_live) = (false, 0, 0);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "terrace did not finish");
        {
            let parser = parser.lock().unwrap();
            let screen = parser.screen();
            let width = screen.size().1.get();
            let mut live = 0;
            let rows: Vec<String> = screen.rows(0, width).collect();
            for (row, text) in rows.iter().enumerate() {
                if text.starts_with(SPINNER) {
                    live += 1;
                    // A line exactly as wide as the terminal leaves the
                    // next live line to the terminal's own wrap, which
                    // starts it on the next row: only a row continued by
                    // something else is a live line that did not fit.
                    let next_is_live = rows.get(row + 1).is_some_and(|n| n.starts_with(SPINNER));
                    live_line_wrapped |= screen.row_wrapped(row as u16) && !next_is_live;
                }
            }
            ticks_seen += live;
            most_live = most_live.max(live);
        }
        std::thread::sleep(Duration::from_millis(30));
    };
    reader.join().unwrap();
    let Ok(screen) = Arc::try_unwrap(parser) else {
        panic!("the reader has ended")
    };
    let screen = screen.into_inner().unwrap();
    Run {
        screen,
        status,
        live_line_wrapped,
        ticks_seen,
        most_live,
    }
}

const UP: &[&str] = &[
    "cluster",
    "up",
    "--region",
    REGION,
    "--yes",
    "--stop-after",
    "outputs",
];

const WARNING: (&str, &str) = ("FAKE_TF_WARNING", "1");
const TICKS: (&str, &str) = ("FAKE_TF_TICKS", "30");

#[tokio::test]
async fn the_warning_appears_once_whole_and_no_line_repeats() {
    terrace::tls::install_crypto_provider();
    let run = run(80, UP, &[WARNING, TICKS]).await;
    let rows = run.rows();
    let screen = rows.join("\n");
    assert!(run.status.success(), "{screen}");
    assert!(
        run.ticks_seen > 0,
        "the live line showed the ticks:\n{screen}"
    );
    assert_eq!(
        run.count("Incomplete lock file information for providers"),
        1,
        "{screen}"
    );
    assert_eq!(
        run.count("terraform providers lock -platform=linux_amd64"),
        1,
        "the whole warning, once:\n{screen}"
    );
    assert_eq!(
        run.count("Still creating"),
        0,
        "ticks pass, they are not kept:\n{screen}"
    );
    let mut seen = std::collections::BTreeSet::new();
    for row in &rows {
        assert!(seen.insert(row), "repeated line {row:?} in:\n{screen}");
    }
    assert!(!run.live_line_wrapped, "{screen}");
    assert_eq!(
        rows[rows.len() - 2..],
        [
            "next, to finish the remaining phases:",
            "  terrace cluster up --region us-east-1 --name terrace-us-east-1"
        ],
        "{screen}"
    );
}

#[tokio::test]
async fn a_narrow_terminal_never_wraps_the_live_line() {
    terrace::tls::install_crypto_provider();
    let run = run(40, UP, &[WARNING, TICKS]).await;
    let screen = run.rows().join("\n");
    assert!(run.status.success(), "{screen}");
    assert!(
        run.ticks_seen > 0,
        "the live line showed the ticks:\n{screen}"
    );
    assert!(!run.live_line_wrapped, "{screen}");
    assert_eq!(run.count("Incomplete lock"), 1, "{screen}");
}

#[tokio::test]
async fn a_failure_is_printed_once_with_its_hint() {
    terrace::tls::install_crypto_provider();
    let run = run(
        80,
        &UP[..5],
        &[
            ("FAKE_TF_FAIL", "apply"),
            ("FAKE_TF_FAIL_SUMMARY", "creating EKS Cluster: AccessDenied"),
        ],
    )
    .await;
    let screen = run.rows().join("\n");
    assert_eq!(run.status.code(), Some(1), "{screen}");
    assert_eq!(run.count("AccessDenied"), 1, "{screen}");
    assert_eq!(run.count("FAILED"), 1, "{screen}");
    assert!(
        run.rows()
            .iter()
            .any(|r| r.starts_with("error: terraform apply failed")),
        "{screen}"
    );
    assert_eq!(
        run.count("hint: run the same command again to resume at terraform"),
        1,
        "{screen}"
    );
}

#[tokio::test]
async fn a_fleet_shows_one_live_line_per_cluster_then_one_table() {
    terrace::tls::install_crypto_provider();
    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/fleet-emulator.yaml"
    );
    let args = [
        "--config",
        config,
        "fleet",
        "up",
        "--yes",
        "--stop-after",
        "outputs",
    ];
    let run = run(80, &args, &[WARNING, TICKS]).await;
    let rows = run.rows();
    let screen = rows.join("\n");
    assert!(run.status.success(), "{screen}");
    assert_eq!(
        run.most_live, 3,
        "a live line per cluster at once:\n{screen}"
    );
    assert!(!run.live_line_wrapped, "{screen}");
    for (cluster, region) in [
        ("fleet-us-east-1", "us-east-1"),
        ("fleet-us-west-2", "us-west-2"),
        ("fleet-eu-west-1", "eu-west-1"),
    ] {
        let warned = rows
            .iter()
            .filter(|r| r.contains(cluster) && r.contains("Incomplete lock file"))
            .count();
        assert_eq!(warned, 1, "{cluster}'s warning, once:\n{screen}");
        let line = rows
            .iter()
            .filter(|r| {
                r.split_whitespace().take(4).collect::<Vec<_>>()
                    == [cluster, region, "done", "outputs"]
            })
            .count();
        assert_eq!(line, 1, "{cluster}'s row in the table:\n{screen}");
    }
    assert_eq!(run.count("Still creating"), 0, "{screen}");
    assert!(
        rows.iter()
            .any(|r| r.starts_with("CLUSTER") && r.contains("RESULT")),
        "{screen}"
    );
}
