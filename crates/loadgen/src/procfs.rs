//! What the load generator reads about the server process from `/proc`: its resident memory
//! (to compute memory per session), its open-file limit (which caps the sessions it can hold)
//! and its CPU time (to start each phase once the server is idle again).

use std::fs;

/// Resident set size of `pid` in bytes (`VmRSS`), or `None` if the process is gone or unreadable.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The soft `Max open files` limit of `pid` (`self` for this process).
pub fn open_files_limit(pid: &str) -> Option<u64> {
    let limits = fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// CPU time `pid` has used so far (user + system), in clock ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// CPU time `pid` has used so far, in seconds.
pub fn cpu_secs(pid: u32) -> Option<f64> {
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz as f64 } else { 100.0 };
    Some(cpu_ticks(pid)? as f64 / hz)
}

/// CPU seconds `pid` used between two readings of [`cpu_secs`].
pub fn cpu_used(pid: Option<u32>, before: Option<f64>) -> Option<f64> {
    Some(cpu_secs(pid?)? - before?)
}

/// Waits until `pid` has been nearly idle (under 3 ticks, ~30 ms of CPU, per half second) or
/// `within` has passed, so a phase does not start while the server still works off the last
/// one (e.g. closing twenty thousand sessions). Returns whether it settled.
pub async fn settle(pid: Option<u32>, within: std::time::Duration) -> bool {
    let Some(pid) = pid else { return true };
    let deadline = tokio::time::Instant::now() + within;
    let mut last = cpu_ticks(pid);
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let now = cpu_ticks(pid);
        match (last, now) {
            (Some(a), Some(b)) if b.saturating_sub(a) < 3 => return true,
            (_, None) => return false,
            _ => last = now,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        assert!(rss_bytes(me).is_some_and(|b| b > 0));
        assert!(open_files_limit("self").is_some_and(|n| n > 0));
        assert_eq!(rss_bytes(u32::MAX), None);
        assert!(cpu_ticks(me).is_some());
        assert_eq!(cpu_ticks(u32::MAX), None);
    }

    #[test]
    fn cpu_ticks_grow_with_work() {
        let me = std::process::id();
        let before = cpu_ticks(me).expect("ticks");
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(300) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        assert!(cpu_ticks(me).expect("ticks") > before);
    }
}
