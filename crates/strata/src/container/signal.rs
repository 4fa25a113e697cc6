//! Signals by name, as Docker takes them (`--stop-signal`, `kill -s`, an
//! image's STOPSIGNAL): `SIGUSR1`, `USR1`, `usr1`, `10`, `SIGRTMIN+3`.
//! Written here: the table is the kernel's, and no crate maps names both
//! ways with Docker's forms.

use crate::error::{Error, Result};

const NAMES: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("POLL", libc::SIGPOLL),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// The signal number `s` names; an error naming `s` otherwise.
pub fn parse(s: &str) -> Result<i32> {
    let bad = || Error::invalid(format!("invalid signal: {s}"));
    let max = libc::SIGRTMAX();
    if let Ok(n) = s.parse::<i32>() {
        return if (1..=max).contains(&n) { Ok(n) } else { Err(bad()) };
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some((_, n)) = NAMES.iter().find(|(k, _)| *k == name) {
        return Ok(*n);
    }
    let rt = |base: i32, off: &str, sign: i32| off.parse::<i32>().ok().map(|o| base + sign * o);
    let n = match name {
        "RTMIN" => Some(libc::SIGRTMIN()),
        "RTMAX" => Some(max),
        _ => name
            .strip_prefix("RTMIN+")
            .and_then(|o| rt(libc::SIGRTMIN(), o, 1))
            .or_else(|| name.strip_prefix("RTMAX-").and_then(|o| rt(max, o, -1))),
    };
    n.filter(|n| (libc::SIGRTMIN()..=max).contains(n)).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_numbers_and_realtime_signals_parse() {
        for (s, n) in [("SIGUSR1", libc::SIGUSR1), ("usr1", libc::SIGUSR1), ("15", 15), ("TERM", libc::SIGTERM)] {
            assert_eq!(parse(s).unwrap(), n, "{s}");
        }
        assert_eq!(parse("SIGRTMIN+3").unwrap(), libc::SIGRTMIN() + 3);
        for bad in ["", "SIGNOPE", "0", "99", "RTMIN+99", "-1"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
