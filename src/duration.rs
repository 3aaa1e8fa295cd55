//! Durations as people read and write them: `3m05s` in summaries and
//! progress, `24h` in flags. A leaf: the library formats a duration here
//! instead of reaching into `ui`, and `cli` parses one without reaching
//! into the domain modules.

use std::time::Duration;

/// `42s`, `3m05s`, `1h02m`.
pub fn format(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60),
    }
}

/// `30m`, `24h`, `7d`, `2w`, `90s`: a whole number and one unit.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?} has no unit: use s, m, h, d or w (e.g. 24h)"))?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} does not start with a whole number (e.g. 24h)"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?}: use s, m, h, d or w"
            ));
        }
    };
    n.checked_mul(seconds)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(format(Duration::from_secs(42)), "42s");
        assert_eq!(format(Duration::from_secs(185)), "3m05s");
        assert_eq!(format(Duration::from_secs(3720)), "1h02m");
    }

    #[test]
    fn parses() {
        assert_eq!(parse("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse("2w"), Ok(Duration::from_secs(14 * 86_400)));
        assert_eq!(parse("90s"), Ok(Duration::from_secs(90)));
        for bad in ["24", "h", "1.5h", "3y", "-1h", "", "99999999999999999w"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
