//! What the load generator reads about the server process from `/proc`: its resident memory
//! (to compute memory per session) and its open-file limit (which caps the sessions it can hold).

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        assert!(rss_bytes(me).is_some_and(|b| b > 0));
        assert!(open_files_limit("self").is_some_and(|n| n > 0));
        assert_eq!(rss_bytes(u32::MAX), None);
    }
}
