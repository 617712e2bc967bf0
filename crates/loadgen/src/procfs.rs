//! What the load generator reads about the server processes from `/proc` (one, or one per
//! node of a cluster): their resident memory (to compute memory per session), their open-file
//! limits (which cap the sessions they can hold) and their CPU time (per invitation, and to
//! start each phase once they are idle again).

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

/// Processes read together: the servers under load (none, one, or one per node of a
/// cluster), or this one. Each figure is theirs together.
#[derive(Debug, Clone, Default)]
pub struct Processes(pub Vec<u32>);

impl Processes {
    /// Their CPU time so far, in seconds; None if there are none or one is unreadable.
    pub fn cpu_secs(&self) -> Option<f64> {
        self.sum(cpu_secs)
    }

    /// Their CPU seconds since `before` (a [`Processes::cpu_secs`] reading).
    pub fn cpu_used(&self, before: Option<f64>) -> Option<f64> {
        Some(self.cpu_secs()? - before?)
    }

    /// Their resident memory together, in bytes.
    pub fn rss_bytes(&self) -> Option<u64> {
        self.sum(rss_bytes)
    }

    /// The files they can open together (the sum of their soft limits).
    pub fn open_files_limit(&self) -> Option<u64> {
        self.sum(|pid| open_files_limit(&pid.to_string()))
    }

    fn sum<T: std::iter::Sum>(&self, read: impl Fn(u32) -> Option<T>) -> Option<T> {
        if self.0.is_empty() {
            return None;
        }
        self.0.iter().map(|pid| read(*pid)).sum()
    }

    /// Waits until they have been nearly idle (under 3 ticks each, ~30 ms of CPU, per half
    /// second) or `within` has passed, so a phase does not start while a server still works
    /// off the last one (e.g. closing twenty thousand sessions). Returns whether they settled.
    pub async fn settle(&self, within: std::time::Duration) -> bool {
        if self.0.is_empty() {
            return true;
        }
        let idle_ticks = 3 * self.0.len() as u64;
        let deadline = tokio::time::Instant::now() + within;
        let mut last = self.sum(cpu_ticks);
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            let now = self.sum(cpu_ticks);
            match (last, now) {
                (Some(a), Some(b)) if b.saturating_sub(a) < idle_ticks => return true,
                (_, None) => return false,
                _ => last = now,
            }
        }
        false
    }
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
    fn servers_add_up_and_any_unreadable_one_gives_none() {
        let me = std::process::id();
        let one = Processes(vec![me]).rss_bytes().expect("rss");
        let twice = Processes(vec![me, me]).rss_bytes().expect("rss");
        assert!(twice >= 2 * one - 2 * 4096 * 64, "{one} {twice}");
        assert_eq!(Processes(vec![me, u32::MAX]).rss_bytes(), None);
        assert_eq!(Processes::default().cpu_secs(), None);
        let limit = open_files_limit("self").expect("limit");
        assert_eq!(Processes(vec![me, me]).open_files_limit(), Some(2 * limit));
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
