//! Docker's ways of printing: padded tables, sizes in SI units with three
//! significant digits ("4.26MB"), and ages like "2 hours ago".

/// A table printed with columns padded to their widest cell plus three spaces.
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Table { rows: vec![header.iter().map(|s| s.to_string()).collect()] }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn print(&self) {
        let cols = self.rows[0].len();
        let widths: Vec<usize> = (0..cols)
            .map(|c| self.rows.iter().map(|r| r.get(c).map_or(0, |s| s.chars().count())).max().unwrap_or(0))
            .collect();
        for r in &self.rows {
            let mut line = String::new();
            for (c, cell) in r.iter().enumerate() {
                if c + 1 == cols {
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    line.push_str(&" ".repeat(widths[c] - cell.chars().count() + 3));
                }
            }
            println!("{}", line.trim_end());
        }
    }
}

/// go-units `HumanSizeWithPrecision(size, 3)`: decimal units.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    format!("{}{}", sig3(v), UNITS[i])
}

/// `%.3g` without an exponent (values here are below 1000).
fn sig3(v: f64) -> String {
    let decimals = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let s = format!("{v:.decimals$}");
    // %g drops trailing zeros; rounding may also carry into a new digit (999.5 -> 1000).
    let s = if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s };
    s
}

/// go-units `HumanDuration` plus " ago".
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let minutes = s / 60;
    let hours = (s as f64 / 3600.0 + 0.5) as i64;
    let text = if s < 1 {
        "Less than a second".to_string()
    } else if s == 1 {
        "1 second".to_string()
    } else if s < 60 {
        format!("{s} seconds")
    } else if minutes == 1 {
        "About a minute".to_string()
    } else if minutes < 60 {
        format!("{minutes} minutes")
    } else if hours == 1 {
        "About an hour".to_string()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", hours / 24 / 365)
    };
    format!("{text} ago")
}

/// Shorten to `max` characters with an ellipsis, as Docker's tables do.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// Transfer progress: a bar per blob on a terminal, plain lines otherwise.
pub(crate) struct TransferProgress {
    bars:
        Option<(indicatif::MultiProgress, std::sync::Mutex<std::collections::HashMap<String, indicatif::ProgressBar>>)>,
}

impl TransferProgress {
    pub(crate) fn new(terminal: bool) -> Self {
        let bars = terminal
            .then(|| (indicatif::MultiProgress::new(), std::sync::Mutex::new(std::collections::HashMap::new())));
        TransferProgress { bars }
    }
}

impl strata::registry::Progress for TransferProgress {
    fn event(&self, digest: &strata::Digest, event: strata::registry::Event) {
        use strata::registry::Event;
        let short = &digest.hex()[..12];
        let Some((multi, bars)) = &self.bars else {
            let line = match event {
                Event::Exists => format!("{short}: already exists"),
                Event::Mounted => format!("{short}: mounted from another repository"),
                Event::Started(Some(n)) => format!("{short}: transferring {}", human_size(n)),
                Event::Started(None) => format!("{short}: transferring"),
                Event::Retrying(why) => format!("{short}: retrying ({why})"),
                Event::Done => format!("{short}: done"),
                Event::Progress(_) => return,
            };
            eprintln!("{line}");
            return;
        };
        let mut bars = bars.lock().expect("not poisoned");
        match event {
            Event::Started(size) => {
                let pb = multi.add(indicatif::ProgressBar::new(size.unwrap_or(0)));
                pb.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                );
                pb.set_prefix(short.to_string());
                bars.insert(short.to_string(), pb);
            }
            Event::Progress(n) => {
                if let Some(pb) = bars.get(short) {
                    pb.set_position(n);
                }
            }
            Event::Done => {
                if let Some(pb) = bars.get(short) {
                    pb.finish();
                }
            }
            Event::Retrying(why) => {
                let _ = multi.println(format!("{short}: retrying ({why})"));
            }
            Event::Exists => {
                let _ = multi.println(format!("{short}: already exists"));
            }
            Event::Mounted => {
                let _ = multi.println(format!("{short}: mounted from another repository"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_docker() {
        for (b, want) in [
            (0, "0B"),
            (512, "512B"),
            (1234, "1.23kB"),
            (4_260_000, "4.26MB"),
            (1000, "1kB"),
            (15_100_000, "15.1MB"),
            (150_000_000, "150MB"),
        ] {
            assert_eq!(human_size(b), want, "{b}");
        }
    }

    #[test]
    fn ages_match_docker() {
        assert_eq!(human_duration(0), "Less than a second ago");
        assert_eq!(human_duration(30), "30 seconds ago");
        assert_eq!(human_duration(90), "About a minute ago");
        assert_eq!(human_duration(7200), "2 hours ago");
        assert_eq!(human_duration(3 * 86400), "3 days ago");
    }
}
