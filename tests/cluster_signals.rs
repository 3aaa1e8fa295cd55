//! How `terrace cluster up` stops when it is asked to, or killed: SIGINT,
//! SIGTERM and SIGHUP stop Terraform cleanly (lock released) with exit 130,
//! 143 and 129; a second signal kills Terraform; a SIGKILLed terrace leaves
//! no Terraform running; Ctrl-C at the apply prompt stops at once. The
//! real binary against moto, with the fake terraform for a slow apply.

mod support;

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use support::machine::{Machine, REGION, error, events, running, wait_gone};
use support::signals::{signal_group, wait_for_pid};

const UP: [&str; 9] = [
    "--output",
    "json",
    "cluster",
    "up",
    "--region",
    REGION,
    "--yes",
    "--stop-after",
    "outputs",
];

/// An `up` whose apply takes 60 s, started and waited for until the fake
/// terraform's apply runs.
struct SlowApply {
    machine: Machine,
    child: Child,
    terraform: i32,
    released: PathBuf,
}

impl SlowApply {
    async fn start(fake_env: &[(&str, &str)], own_group: bool) -> SlowApply {
        let mut machine = Machine::new(support::moto::account().await).with_fake_terraform();
        let released = machine.dir.path().join("released");
        let started = machine.dir.path().join("started");
        machine = machine
            .with("FAKE_TF_APPLY_SECONDS", "60")
            .with("FAKE_TF_RELEASED", released.to_str().unwrap())
            .with("FAKE_TF_STARTED", started.to_str().unwrap());
        for (k, v) in fake_env {
            machine = machine.with(k, v);
        }
        let mut command = machine.command(&UP);
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        if own_group {
            command.process_group(0);
        }
        let child = command.spawn().unwrap();
        let terraform = wait_for_pid(&started, Duration::from_secs(60));
        SlowApply {
            machine,
            child,
            terraform,
            released,
        }
    }

    fn signal(&self, signal: libc::c_int) {
        support::signals::signal(self.child.id(), signal);
    }

    /// Exit code and stdout of the finished terrace.
    fn wait(mut self) -> (Option<i32>, String, Machine, PathBuf, i32) {
        let mut stdout = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        let code = self.child.wait().unwrap().code();
        (code, stdout, self.machine, self.released, self.terraform)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_sigterm_and_sighup_stop_terraform_cleanly_with_their_exit_codes() {
    terrace::tls::install_crypto_provider();
    for (signal, name, code) in [
        (libc::SIGTERM, "SIGTERM", 143),
        (libc::SIGHUP, "SIGHUP", 129),
        (libc::SIGINT, "SIGINT", 130),
    ] {
        let run = SlowApply::start(&[], false).await;
        run.signal(signal);
        let (exit, stdout, machine, released, terraform) = run.wait();
        assert_eq!(exit, Some(code), "{name}: {stdout}");
        assert!(
            released.exists(),
            "{name}: Terraform was stopped with SIGINT and released its lock"
        );
        assert!(
            wait_gone(terraform, Duration::from_secs(10)),
            "{name}: Terraform is gone"
        );
        let journal = machine.journal();
        assert_eq!(
            journal["up"]["phases"]["terraform"]["status"], "interrupted",
            "{name}"
        );
        let events = events(&stdout);
        assert!(
            error(&events).contains(&format!("stopped by {name}")),
            "{name}: {stdout}"
        );
        assert!(
            events.iter().any(|e| e["event"] == "summary"),
            "{name}: a summary even when stopped"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_kills_a_terraform_that_does_not_stop() {
    terrace::tls::install_crypto_provider();
    let run = SlowApply::start(&[("FAKE_TF_IGNORE_SIGINT", "1")], false).await;
    run.signal(libc::SIGTERM);
    // Terraform ignores the SIGINT it was sent; terrace waits for it.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        running(run.terraform),
        "Terraform still runs after the first signal"
    );
    assert!(running(run.child.id() as i32), "terrace waits for it");
    run.signal(libc::SIGINT);
    let (exit, stdout, _machine, released, terraform) = run.wait();
    assert_eq!(exit, Some(143), "the first signal decides: {stdout}");
    assert!(
        wait_gone(terraform, Duration::from_secs(10)),
        "the second signal killed Terraform"
    );
    assert!(!released.exists(), "killed, not stopped cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terraform_stops_cleanly_when_terrace_is_killed() {
    terrace::tls::install_crypto_provider();
    // terrace alone, then its whole process group (Terraform has its own).
    for own_group in [false, true] {
        let run = SlowApply::start(&[], own_group).await;
        if own_group {
            signal_group(run.child.id(), libc::SIGKILL);
        } else {
            run.signal(libc::SIGKILL);
        }
        let (exit, _, _machine, released, terraform) = run.wait();
        assert_eq!(exit, None, "terrace was killed");
        assert!(
            wait_gone(terraform, Duration::from_secs(30)),
            "group kill {own_group}: Terraform (pid {terraform}) was orphaned"
        );
        assert!(
            released.exists(),
            "group kill {own_group}: Terraform got SIGINT, stopped and released its lock"
        );
    }
}

/// A pseudo-terminal: the master end, and the slave's path.
struct Pty {
    master: std::fs::File,
    slave: std::fs::File,
}

impl Pty {
    fn open() -> Pty {
        let (mut master, mut slave) = (0, 0);
        // SAFETY: openpty(3) writes two descriptors into the given ints;
        // the name, termios and winsize arguments may be null.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors were just opened and are owned here.
        unsafe {
            use std::os::fd::FromRawFd;
            Pty {
                master: std::fs::File::from_raw_fd(master),
                slave: std::fs::File::from_raw_fd(slave),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_at_the_apply_prompt_stops_at_once() {
    use std::io::Write;
    terrace::tls::install_crypto_provider();
    let machine = Machine::new(support::moto::account().await).with_fake_terraform();
    let pty = Pty::open();
    let mut command = machine.command(&["cluster", "up", "--region", REGION]);
    command
        .stdin(pty.slave.try_clone().unwrap())
        .stderr(pty.slave.try_clone().unwrap())
        .stdout(Stdio::null());
    // SAFETY: setsid(2) and ioctl(2) are async-signal-safe; they make the
    // pty terrace's controlling terminal, as a login shell's is.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() == -1 || libc::ioctl(0, libc::TIOCSCTTY, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().unwrap();
    drop(pty.slave);
    let mut master = pty.master;
    let mut screen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !String::from_utf8_lossy(&screen).contains("Apply? [y/N]") {
        assert!(
            Instant::now() < deadline,
            "no prompt: {}",
            String::from_utf8_lossy(&screen)
        );
        let mut chunk = [0u8; 4096];
        let n = master.read(&mut chunk).unwrap_or(0);
        assert!(n > 0, "terrace ended: {}", String::from_utf8_lossy(&screen));
        screen.extend_from_slice(&chunk[..n]);
    }
    let asked = Instant::now();
    master.write_all(&[0x03]).unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(20),
            "Ctrl-C at the prompt did not stop terrace"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(130));
    assert_eq!(
        machine.journal()["up"]["phases"]["terraform"]["status"],
        "interrupted"
    );
}
