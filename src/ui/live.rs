//! The live view of a terminal, on indicatif: one line per running cluster
//! (spinner, phase, latest step cut to the terminal's width, time in the
//! phase), with finished steps and whole multi-line messages printed once
//! above the live lines. indicatif redraws from one buffered write per
//! frame at a capped rate, so lines do not flicker, and it counts the rows
//! a printed message takes, so a long warning is never drawn twice.
//!
//! Lines are keyed by cluster: a run of one cluster uses the key `""`, a
//! fleet gives each cluster its name, and each gets its own line.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

const TICK: Duration = Duration::from_millis(100);

struct Line {
    bar: ProgressBar,
    phase: String,
}

pub(super) struct Board {
    multi: MultiProgress,
    lines: Mutex<BTreeMap<String, Line>>,
    /// A question is on the screen: live lines stay away until the next event.
    paused: Mutex<bool>,
    target: Box<dyn Fn() -> ProgressDrawTarget + Send + Sync>,
}

impl Board {
    /// A board on stderr.
    pub(super) fn stderr() -> Board {
        Board::on(ProgressDrawTarget::stderr)
    }

    /// A board drawing to whatever `target` makes (a test's screen).
    pub(super) fn on(target: impl Fn() -> ProgressDrawTarget + Send + Sync + 'static) -> Board {
        Board {
            multi: MultiProgress::with_draw_target(target()),
            lines: Mutex::new(BTreeMap::new()),
            paused: Mutex::new(false),
            target: Box::new(target),
        }
    }

    /// Prints `text` (every line of it, once) above the live lines.
    pub(super) fn print(&self, text: &str) {
        self.resume();
        let _ = self.multi.println(text);
    }

    /// Shows `message`'s first line as the state of `cluster`, in `phase`;
    /// a new phase restarts the line's clock.
    pub(super) fn show(&self, cluster: &str, phase: &str, message: &str) {
        self.resume();
        let Ok(mut lines) = self.lines.lock() else {
            return;
        };
        let line = lines.entry(cluster.to_string()).or_insert_with(|| {
            let bar = self
                .multi
                .add(ProgressBar::new_spinner().with_style(style()));
            bar.enable_steady_tick(TICK);
            Line {
                bar,
                phase: String::new(),
            }
        });
        if line.phase != phase {
            line.phase = phase.to_string();
            line.bar.set_prefix(label(cluster, phase));
            line.bar.reset_elapsed();
        }
        line.bar.set_message(first_line(message).to_string());
    }

    /// Clears the live lines while a question is asked; the next event
    /// brings them back.
    pub(super) fn pause(&self) {
        let Ok(mut paused) = self.paused.lock() else {
            return;
        };
        if !*paused {
            let _ = self.multi.clear();
            self.multi.set_draw_target(ProgressDrawTarget::hidden());
            *paused = true;
        }
    }

    fn resume(&self) {
        if let Ok(mut paused) = self.paused.lock()
            && *paused
        {
            self.multi.set_draw_target((self.target)());
            *paused = false;
        }
    }

    /// Removes every live line for good (before a summary or an error).
    pub(super) fn finish(&self) {
        if let Ok(mut lines) = self.lines.lock() {
            for (_, line) in std::mem::take(&mut *lines) {
                line.bar.finish_and_clear();
                self.multi.remove(&line.bar);
            }
        }
        let _ = self.multi.clear();
    }
}

fn style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {prefix} {wide_msg} {phase_elapsed}")
        .expect("a valid template")
        .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ ")
        .with_key(
            "phase_elapsed",
            |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(&crate::duration::format(state.elapsed()));
            },
        )
}

fn label(cluster: &str, phase: &str) -> String {
    if cluster.is_empty() {
        format!("{phase:<10}")
    } else {
        format!("{cluster} {phase:<10}")
    }
}

fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or_default().trim_end()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use indicatif::TermLike;

    use super::*;

    /// A terminal screen of 12 rows and 40 columns for indicatif to draw
    /// on, parsed as a terminal would.
    #[derive(Clone)]
    struct Screen(Arc<Mutex<vt100::Parser>>);

    impl std::fmt::Debug for Screen {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Screen")
        }
    }

    impl Screen {
        fn new() -> Screen {
            let size = |n| std::num::NonZeroU16::new(n).unwrap();
            Screen(Arc::new(Mutex::new(vt100::Parser::new(
                size(12),
                size(40),
                0,
            ))))
        }

        fn write(&self, bytes: &[u8]) {
            self.0.lock().unwrap().process(bytes);
        }

        /// As console does: a move by 0 writes nothing (`ESC[0A` moves by one).
        fn cursor(&self, n: usize, direction: char) {
            if n > 0 {
                self.write(format!("\x1b[{n}{direction}").as_bytes());
            }
        }

        fn board(&self) -> Board {
            let screen = self.clone();
            Board::on(move || ProgressDrawTarget::term_like_with_hz(Box::new(screen.clone()), 100))
        }

        /// The screen's non-empty rows, after indicatif's next frames.
        fn rows(&self) -> Vec<String> {
            std::thread::sleep(Duration::from_millis(60));
            self.0
                .lock()
                .unwrap()
                .screen()
                .rows(0, 40)
                .map(|r| r.trim_end().to_string())
                .filter(|r| !r.is_empty())
                .collect()
        }
    }

    impl TermLike for Screen {
        fn width(&self) -> u16 {
            self.0.lock().unwrap().screen().size().1.get()
        }
        fn height(&self) -> u16 {
            self.0.lock().unwrap().screen().size().0.get()
        }
        fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
            self.cursor(n, 'A');
            Ok(())
        }
        fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
            self.cursor(n, 'B');
            Ok(())
        }
        fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
            self.cursor(n, 'C');
            Ok(())
        }
        fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
            self.cursor(n, 'D');
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            // A terminal's line discipline turns "\n" into "\r\n".
            self.write(format!("{s}\r\n").as_bytes());
            Ok(())
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            self.write(s.replace('\n', "\r\n").as_bytes());
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            self.write(b"\r\x1b[2K");
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn each_cluster_has_one_line_that_fits_the_width() {
        let screen = Screen::new();
        let board = screen.board();
        board.show(
            "a",
            "terraform",
            "module.network.aws_vpc.this: Still creating... [10s elapsed]",
        );
        board.show(
            "b",
            "addons",
            "3/5 addons healthy, waiting for external-dns: Progressing",
        );
        board.show(
            "a",
            "terraform",
            "module.network.aws_vpc.this: Still creating... [20s elapsed]",
        );
        board.show("b", "addons", "4/5 addons healthy\nsecond line never shown");
        let rows = screen.rows();
        board.finish();
        assert_eq!(rows.len(), 2, "{rows:#?}");
        assert!(
            rows[0].contains(" a terraform  module.network.aws_vpc"),
            "{rows:#?}"
        );
        assert!(
            rows[1].contains("b addons     4/5 addons healthy"),
            "{rows:#?}"
        );
        assert!(
            rows.iter().all(|r| r.ends_with(" 0s")),
            "the clock stays in view: {rows:#?}"
        );
        assert!(!rows.concat().contains("second line"), "{rows:#?}");
    }

    #[test]
    fn a_multi_line_message_is_printed_once_above_the_live_line() {
        let screen = Screen::new();
        let board = screen.board();
        board.show("", "terraform", "init");
        board.print("warning: Incomplete lock file\n\n  detail one\n  detail two");
        for i in 0..20 {
            board.show("", "terraform", &format!("tick {i}"));
            std::thread::sleep(Duration::from_millis(5));
        }
        let rows = screen.rows();
        assert_eq!(rows.len(), 4, "{rows:#?}");
        assert_eq!(
            rows[..3],
            [
                "warning: Incomplete lock file",
                "  detail one",
                "  detail two"
            ],
            "the warning once, whole, above the live line"
        );
        assert!(rows[3].contains("tick 19"), "{rows:#?}");
        board.finish();
        assert_eq!(
            screen.rows().len(),
            3,
            "the live line is gone: {:#?}",
            screen.rows()
        );
    }

    #[test]
    fn a_question_clears_the_line_until_the_next_event() {
        let screen = Screen::new();
        let board = screen.board();
        board.show("", "terraform", "planned");
        assert_eq!(screen.rows().len(), 1);
        board.pause();
        assert!(screen.rows().is_empty(), "{:#?}", screen.rows());
        board.show("", "terraform", "applying");
        let rows = screen.rows();
        board.finish();
        assert_eq!(rows.len(), 1, "{rows:#?}");
        assert!(rows[0].contains("applying"), "{rows:#?}");
    }
}
