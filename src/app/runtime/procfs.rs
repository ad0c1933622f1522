//! What the API and /metrics report about the process and the system, read from Linux /proc.
//! A field /proc does not give is reported as 0, never made up.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Clock ticks per second of /proc's times (USER_HZ: 100 on every Linux architecture we ship).
pub const TICKS: f64 = 100.0;

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// `/proc/self/stat` fields, 1-based as in proc(5) (field 1 = pid, 2 = comm, 3 = state...).
#[derive(Debug, Default, Clone)]
pub struct SelfStat {
    pub comm: String,
    pub state: String,
    /// Fields 4.. as numbers (index 0 = field 4, ppid).
    nums: Vec<i64>,
}

impl SelfStat {
    pub fn read() -> SelfStat {
        SelfStat::parse(&read("/proc/self/stat"))
    }

    pub fn parse(text: &str) -> SelfStat {
        // comm is in parentheses and may contain spaces or ')': split at the last ')'.
        let (Some(open), Some(close)) = (text.find('('), text.rfind(')')) else {
            return SelfStat::default();
        };
        let comm = text.get(open + 1..close).unwrap_or("").to_string();
        let mut rest = text.get(close + 1..).unwrap_or("").split_whitespace();
        let state = rest.next().unwrap_or("").to_string();
        let nums = rest.map(|f| f.parse().unwrap_or(0)).collect();
        SelfStat { comm, state, nums }
    }

    /// proc(5) field number `n` (n >= 4).
    pub fn field(&self, n: usize) -> i64 {
        n.checked_sub(4)
            .and_then(|i| self.nums.get(i))
            .copied()
            .unwrap_or(0)
    }

    pub fn ppid(&self) -> i64 {
        self.field(4)
    }
    pub fn utime(&self) -> i64 {
        self.field(14)
    }
    pub fn stime(&self) -> i64 {
        self.field(15)
    }
    /// CPU seconds used (user + system).
    pub fn cpu_seconds(&self) -> f64 {
        (self.utime() + self.stime()) as f64 / TICKS
    }
}

/// `key: value kB` lines of /proc/self/status or /proc/meminfo.
pub fn kv_file(path: &str) -> HashMap<String, u64> {
    read(path)
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            let n = v.split_whitespace().next()?.parse().ok()?;
            Some((k.trim().to_string(), n))
        })
        .collect()
}

/// Resident memory of this process in kB.
pub fn rss_kbyte() -> u64 {
    kv_file("/proc/self/status")
        .get("VmRSS")
        .copied()
        .unwrap_or(0)
}

/// The aggregate `cpu` line of /proc/stat: user nice system idle iowait irq softirq steal guest.
pub fn system_cpu() -> [u64; 9] {
    let text = read("/proc/stat");
    let mut out = [0u64; 9];
    if let Some(line) = text.lines().find(|l| l.starts_with("cpu ")) {
        for (slot, v) in out.iter_mut().zip(line.split_whitespace().skip(1)) {
            *slot = v.parse().unwrap_or(0);
        }
    }
    out
}

/// Number of `cpuN` lines in /proc/stat (CPUs online).
pub fn cpus_online() -> u64 {
    read("/proc/stat")
        .lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count() as u64
}

/// Load averages (1, 5, 15 min).
pub fn loadavg() -> [f64; 3] {
    let text = read("/proc/loadavg");
    let mut out = [0.0; 3];
    for (slot, v) in out.iter_mut().zip(text.split_whitespace()) {
        *slot = v.parse().unwrap_or(0.0);
    }
    out
}

/// (uptime, idle time) in seconds.
pub fn uptime() -> (f64, f64) {
    let text = read("/proc/uptime");
    let mut it = text.split_whitespace().map(|v| v.parse().unwrap_or(0.0));
    (it.next().unwrap_or(0.0), it.next().unwrap_or(0.0))
}

/// Bytes (received, sent) on external interfaces and on loopback, from /proc/net/dev.
pub fn net_bytes() -> ((u64, u64), (u64, u64)) {
    let mut ext = (0, 0);
    let mut lo = (0, 0);
    for line in read("/proc/net/dev").lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let f: Vec<u64> = rest
            .split_whitespace()
            .map(|v| v.parse().unwrap_or(0))
            .collect();
        let (rx, tx) = (
            f.first().copied().unwrap_or(0),
            f.get(8).copied().unwrap_or(0),
        );
        let slot = if name.trim() == "lo" {
            &mut lo
        } else {
            &mut ext
        };
        slot.0 += rx;
        slot.1 += tx;
    }
    (ext, lo)
}

/// System TCP connections: (in use, established, time-wait), and UDP sockets in use.
pub fn connections() -> (u64, u64, u64, u64) {
    let sockstat = read("/proc/net/sockstat");
    let field = |proto: &str, key: &str| -> u64 {
        sockstat
            .lines()
            .find(|l| l.starts_with(proto))
            .and_then(|l| {
                let mut it = l.split_whitespace();
                while let Some(k) = it.next() {
                    if k == key {
                        return it.next()?.parse().ok();
                    }
                }
                None
            })
            .unwrap_or(0)
    };
    // CurrEstab is the 9th value of the "Tcp:" value line in /proc/net/snmp.
    let snmp = read("/proc/net/snmp");
    let est = snmp
        .lines()
        .filter(|l| l.starts_with("Tcp:"))
        .nth(1)
        .and_then(|l| l.split_whitespace().nth(9)?.parse().ok())
        .unwrap_or(0);
    (
        field("TCP:", "inuse"),
        est,
        field("TCP:", "tw"),
        field("UDP:", "inuse"),
    )
}

/// CPU use over the time since the previous call (on the first, since the process started
/// and since boot: SRS samples on a timer, so its first answer is a real figure too), as SRS's
/// `srs_update_proc_stat` computes it, as a fraction (SRS names it `percent` but it is 0–1):
/// this process's CPU time per wall-clock second (1.0 = one core busy, so it may exceed 1 on
/// several cores), and the whole system's non-idle share of all CPU time (0–1; iowait counts
/// as busy, as in SRS's `1 - idle / total`).
pub fn cpu_percent() -> (f64, f64) {
    struct Sample {
        at: Instant,
        proc_ticks: i64,
        sys_idle: u64,
        sys_total: u64,
    }
    // The previous sample and what it gave. Ticks come in 10 ms steps, so two calls a few
    // ms apart (the API answering several requests at once) would turn one tick into
    // several cores' worth: a new figure needs MIN_SAMPLE of wall clock, like SRS's timer.
    const MIN_SAMPLE: f64 = 1.0;
    static LAST: Mutex<Option<(Sample, (f64, f64))>> = Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    let at = Instant::now();
    if let Some((prev, out)) = last.as_ref() {
        if at.duration_since(prev.at).as_secs_f64() < MIN_SAMPLE {
            return *out;
        }
    }
    let s = SelfStat::read();
    let c = system_cpu();
    let now = Sample {
        at,
        proc_ticks: s.utime() + s.stime(),
        sys_idle: c[3],
        sys_total: c[..8].iter().sum(),
    };
    let out = match last.as_ref() {
        Some((prev, _)) => cpu_fractions(
            now.at.duration_since(prev.at).as_secs_f64(),
            now.proc_ticks - prev.proc_ticks,
            now.sys_idle.saturating_sub(prev.sys_idle),
            now.sys_total.saturating_sub(prev.sys_total),
        ),
        None => since_start(&s, uptime().0, now.sys_idle, now.sys_total),
    };
    *last = Some((now, out));
    out
}

/// (own, system) CPU fractions since the process started (`s`'s starttime, field 22, in
/// ticks since boot; `uptime` in seconds since boot) and since boot (`idle` and `total`
/// system ticks).
fn since_start(s: &SelfStat, uptime: f64, idle: u64, total: u64) -> (f64, f64) {
    let age = uptime - s.field(22) as f64 / TICKS;
    cpu_fractions(age, s.utime() + s.stime(), idle, total)
}

/// (own, system) CPU fractions from the deltas between two samples: `secs` of wall clock,
/// `proc_ticks` of this process's user+system time, `idle` and `total` system ticks.
fn cpu_fractions(secs: f64, proc_ticks: i64, idle: u64, total: u64) -> (f64, f64) {
    let own = if secs > 0.0 {
        proc_ticks.max(0) as f64 / TICKS / secs
    } else {
        0.0
    };
    let sys = if total > 0 {
        1.0 - idle.min(total) as f64 / total as f64
    } else {
        0.0
    };
    (own, sys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_self_stat_with_odd_comm() {
        let s =
            SelfStat::parse("42 (a) b) S 7 8 9 0 -1 0 10 0 2 0 150 50 0 0 20 0 3 0 99 1000 200");
        assert_eq!(s.comm, "a) b");
        assert_eq!(s.state, "S");
        assert_eq!(s.ppid(), 7);
        assert_eq!(s.utime(), 150);
        assert_eq!(s.stime(), 50);
        assert_eq!(s.cpu_seconds(), 2.0);
        assert_eq!(s.field(999), 0);
    }

    #[test]
    fn cpu_use_is_a_fraction_as_srs_reports_it() {
        // 77 ticks in one second: 0.77 of a core (SRS's console shows 77%).
        let (own, sys) = cpu_fractions(1.0, 77, 25, 100);
        assert!((own - 0.77).abs() < 1e-9, "{own}");
        assert!((sys - 0.75).abs() < 1e-9, "{sys}");
        assert_eq!(cpu_fractions(0.0, 5, 0, 0), (0.0, 0.0));
        // Started 1000 ticks (10 s) after boot, 150 + 50 ticks of CPU; 30 s since boot.
        let s = SelfStat::parse("42 (a) S 7 8 9 0 -1 0 10 0 2 0 150 50 0 0 20 0 3 0 1000 1 2");
        let (own, sys) = since_start(&s, 30.0, 300, 400);
        assert!((own - 0.1).abs() < 1e-9, "2 s of CPU in 20 s: {own}");
        assert!((sys - 0.25).abs() < 1e-9, "{sys}");
        assert_eq!(since_start(&s, 0.0, 0, 0), (0.0, 0.0), "no uptime read");
        assert_eq!(cpu_fractions(1.0, -3, 200, 100).1, 0.0);
    }
}
