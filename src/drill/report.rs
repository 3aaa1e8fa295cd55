//! A drill's report as files a person opens: a self-contained Markdown
//! document (verdict, phases, milestones, every Application of the
//! baseline and what did not come back) and an SVG timeline with one bar
//! per phase and the RTO target as a line. Pure: text in, text out; the
//! caller writes and uploads the files.

use std::fmt::Write as _;

use super::{PhaseOutcome, Report, human};

/// The Markdown report; it names the SVG timeline beside it.
pub fn markdown(report: &Report) -> String {
    let mut md = String::new();
    let verdict = if report.passed { "PASSED" } else { "FAILED" };
    let _ = writeln!(
        md,
        "# Disaster-recovery drill: {} ({})\n",
        report.cluster, report.region
    );
    let _ = writeln!(md, "**{verdict}**: {}.\n", report.rto.verdict());
    let _ = writeln!(md, "| | |\n|---|---|");
    let _ = writeln!(md, "| started | {} |", report.started);
    let _ = writeln!(
        md,
        "| recovered as | {} in {} |",
        report.recovered_cluster, report.recovered_region
    );
    let _ = writeln!(md, "| RTO target | {} |", human(report.rto.target_seconds));
    let measured = if report.rto.recovered {
        human(report.rto.measured_seconds)
    } else {
        format!(
            "not recovered (gave up after {})",
            human(report.rto.measured_seconds)
        )
    };
    let _ = writeln!(md, "| RTO measured | {measured} |");
    let _ = writeln!(md, "| whole drill | {} |", human(report.seconds()));
    if let Some(error) = &report.error {
        let _ = writeln!(md, "| stopped by | {} |", cell(error));
    }

    let _ = writeln!(
        md,
        "\n## Timeline\n\n![Timeline of the drill]({}.svg)\n",
        report.file_stem()
    );
    let _ = writeln!(
        md,
        "| phase | start | end | duration | result | note |\n|---|---|---|---|---|---|"
    );
    for phase in &report.phases {
        let _ = writeln!(
            md,
            "| {} | +{} | +{} | {} | {} | {} |",
            phase.name,
            human(phase.start),
            human(phase.end),
            human(phase.seconds()),
            outcome(phase.outcome),
            phase.note.as_deref().map(cell).unwrap_or_default()
        );
    }

    let _ = writeln!(
        md,
        "\n## Recovery milestones\n\nSince the recovery began.\n\n| milestone | reached after |\n|---|---|"
    );
    let m = &report.milestones;
    for (name, at) in [
        ("control plane", m.control_plane),
        ("nodes", m.nodes),
        ("addons", m.addons),
        ("last application", m.last_application),
    ] {
        let at = at.map(human).unwrap_or_else(|| "not reached".into());
        let _ = writeln!(md, "| {name} | {at} |");
    }

    let _ = writeln!(
        md,
        "\n## Applications\n\n{} in the baseline, {} of them Synced and Healthy (those must come back).\n",
        report.baseline.len(),
        super::required(&report.baseline).count()
    );
    if !report.baseline.is_empty() {
        let _ = writeln!(
            md,
            "| application | before | revision | source | after |\n|---|---|---|---|---|"
        );
        for app in &report.baseline {
            let id = app.id();
            let after = match report.not_back.iter().find(|n| n.application == id) {
                Some(missing) => format!("**not back**: {}", cell(&missing.reason)),
                None if !app.healthy() => "not required".into(),
                // Stopped before the recovered cluster was judged.
                None if report.error.is_some() => "unknown".into(),
                None => "back".into(),
            };
            let within = if app.source.chart.is_empty() {
                &app.source.path
            } else {
                &app.source.chart
            };
            let _ = writeln!(
                md,
                "| {id} | {} / {} | {} | {} {within} @ {} | {after} |",
                app.sync,
                app.health,
                if app.revision.is_empty() {
                    "-"
                } else {
                    &app.revision
                },
                app.source.repo,
                app.source.target_revision,
            );
        }
    }

    let _ = writeln!(md, "\n## What did not come back\n");
    let failures = report.failures();
    if failures.is_empty() {
        let _ = writeln!(md, "Nothing: every Application of the baseline is back.");
    } else {
        for failure in failures {
            let _ = writeln!(md, "- {}", failure.replace('\n', " "));
        }
    }
    md
}

fn outcome(outcome: PhaseOutcome) -> &'static str {
    match outcome {
        PhaseOutcome::Done => "done",
        PhaseOutcome::Failed => "failed",
        PhaseOutcome::Skipped => "skipped",
    }
}

/// Text that stays inside one Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

const WIDTH: f64 = 800.0;
const LEFT: f64 = 130.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 50.0;
const ROW: f64 = 34.0;
const BAR: f64 = 22.0;

/// The SVG timeline: one bar per phase on a shared time axis, the RTO
/// target as a dashed line from the start of the recovery.
pub fn svg(report: &Report) -> String {
    let recovery_start = report
        .phases
        .iter()
        .find(|p| p.name == "recovery")
        .map_or(0.0, |p| p.start);
    let target_at = recovery_start + report.rto.target_seconds;
    let span = report.seconds().max(target_at).max(1.0) * 1.05;
    let plot = WIDTH - LEFT - RIGHT;
    let x = |seconds: f64| LEFT + seconds / span * plot;
    let height = TOP + ROW * report.phases.len() as f64 + 50.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        svg,
        r#"<title>Drill of {} ({}): {}</title>"#,
        xml(&report.cluster),
        xml(&report.region),
        xml(&report.rto.verdict())
    );
    let _ = writeln!(
        svg,
        r##"<rect width="100%" height="100%" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        svg,
        r#"<text x="10" y="22" font-size="15" font-weight="bold">{} drill of {}: {}</text>"#,
        if report.passed { "PASSED" } else { "FAILED" },
        xml(&report.cluster),
        xml(&report.rto.verdict())
    );
    for (i, phase) in report.phases.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        let colour = match phase.outcome {
            PhaseOutcome::Done => "#4c9f70",
            PhaseOutcome::Failed => "#d1495b",
            PhaseOutcome::Skipped => "#b0b0b0",
        };
        let width = (x(phase.end) - x(phase.start)).max(1.0);
        let _ = writeln!(
            svg,
            r#"<text x="10" y="{:.1}">{}</text>"#,
            y + BAR * 0.7,
            xml(&phase.name)
        );
        let _ = writeln!(
            svg,
            r#"<rect class="phase" data-phase="{}" x="{:.1}" y="{y:.1}" width="{width:.1}" height="{BAR}" fill="{colour}"><title>{}: {} ({})</title></rect>"#,
            xml(&phase.name),
            x(phase.start),
            xml(&phase.name),
            human(phase.seconds()),
            outcome(phase.outcome)
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
            (x(phase.start) + width + 4.0).min(WIDTH - RIGHT - 30.0),
            y + BAR * 0.7,
            human(phase.seconds())
        );
    }
    let bottom = TOP + ROW * report.phases.len() as f64;
    let _ = writeln!(
        svg,
        r##"<line x1="{LEFT}" y1="{bottom:.1}" x2="{:.1}" y2="{bottom:.1}" stroke="#333333"/>"##,
        WIDTH - RIGHT
    );
    for tick in 0..=4 {
        let at = span / 1.05 * f64::from(tick) / 4.0;
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            x(at),
            bottom + 16.0,
            human(at)
        );
    }
    let _ = writeln!(
        svg,
        r##"<line class="rto-target" x1="{0:.1}" y1="{1:.1}" x2="{0:.1}" y2="{2:.1}" stroke="#1f4e9c" stroke-width="2" stroke-dasharray="6 4"/>"##,
        x(target_at),
        TOP - 12.0,
        bottom
    );
    let _ = writeln!(
        svg,
        r##"<text x="{:.1}" y="{:.1}" fill="#1f4e9c" text-anchor="end">RTO target {}</text>"##,
        x(target_at) - 4.0,
        TOP - 16.0,
        human(report.rto.target_seconds)
    );
    svg.push_str("</svg>\n");
    svg
}

/// Text safe inside an XML element or attribute.
fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
