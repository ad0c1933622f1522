//! What the process and the machine look like, as SRS's API reports them: the server and
//! service ids, `/api/v1/summaries` (also the heartbeat's body), rusages, /proc stats and
//! meminfo. Read from `/proc` by [`super::procfs`]; fields and units as SRS 6 names them.

use super::json::{obj, Value};
use super::procfs;
use crate::app::shared::Context;
use std::sync::OnceLock;

/// (server id, service id): random per process, stable while it runs; `server` changing
/// tells a console the server restarted. The server and service ids of this process (the API's `server`/`service`, the hooks'
/// `server_id`/`service_id`).
pub fn server_ids() -> &'static (String, String) {
    static IDS: OnceLock<(String, String)> = OnceLock::new();
    IDS.get_or_init(|| {
        let mut seed = super::log::now_unix_ms()
            ^ ((std::process::id() as u64) << 32)
            ^ (std::time::Instant::now().elapsed().as_nanos() as u64)
            ^ 0x9E37_79B9_7F4A_7C15;
        let mut word = |n: usize| -> String {
            const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
            (0..n)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    ALPHABET[(seed % 36) as usize] as char
                })
                .collect()
        };
        (format!("vid-{}", word(7)), word(8))
    })
}

/// `/proc/meminfo` as SRS's `srs_update_meminfo` reads it: kB values and the two 0–1 ratios.
struct MemInfo {
    total: u64,
    free: u64,
    buffers: u64,
    cached: u64,
    swap_total: u64,
    swap_free: u64,
}

impl MemInfo {
    fn read() -> MemInfo {
        let mem = procfs::kv_file("/proc/meminfo");
        let m = |k: &str| mem.get(k).copied().unwrap_or(0);
        MemInfo {
            total: m("MemTotal"),
            free: m("MemFree"),
            buffers: m("Buffers"),
            cached: m("Cached"),
            swap_total: m("SwapTotal"),
            swap_free: m("SwapFree"),
        }
    }
    /// SRS's `MemActive`: total minus free (not /proc's `Active`).
    fn active(&self) -> u64 {
        self.total.saturating_sub(self.free)
    }
    /// SRS's `RealInUse`: active minus buffers and page cache.
    fn real_in_use(&self) -> u64 {
        self.active()
            .saturating_sub(self.buffers)
            .saturating_sub(self.cached)
    }
    /// `percent_ram`, 0–1.
    fn ram_ratio(&self) -> f64 {
        ratio(self.real_in_use(), self.total)
    }
    /// `percent_swap`, 0–1.
    fn swap_ratio(&self) -> f64 {
        ratio(
            self.swap_total.saturating_sub(self.swap_free),
            self.swap_total,
        )
    }
}

/// `a / b` as SRS's percentages are: a fraction, 0 when `b` is 0.
fn ratio(a: u64, b: u64) -> f64 {
    if b > 0 {
        a as f64 / b as f64
    } else {
        0.0
    }
}

/// The `data` object of `/api/v1/summaries` (SRS `srs_api_dump_summaries`), also sent by the
/// heartbeat. Every `*_percent` is a fraction, 0–1 (`cpu_percent` 0.77 = 77% of one core),
/// as SRS reports it and its console multiplies by 100; byte counters and `*_kbyte` are
/// integers, `uptime`, `ilde_time` and the load averages floats, `srs_uptime` whole seconds.
/// `mem_kbyte` is the current resident size (SRS: the peak, `ru_maxrss`).
pub fn summaries(ctx: &Context) -> Value {
    let s = procfs::SelfStat::read();
    let mem = MemInfo::read();
    let rss = procfs::rss_kbyte();
    let (own_cpu, sys_cpu) = procfs::cpu_percent();
    let load = procfs::loadavg();
    let (uptime, idle) = procfs::uptime();
    let ((rx, tx), (rxi, txi)) = procfs::net_bytes();
    let (tcp, est, tw, udp) = procfs::connections();
    let (srs_recv, srs_send) = ctx.stats.totals();
    let now = crate::app::runtime::log::now_unix_ms();
    let argv = std::env::args().collect::<Vec<_>>().join(" ");
    let cwd = std::env::current_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    obj([
        ("ok", true.into()),
        ("now_ms", now.into()),
        (
            "self",
            obj([
                ("version", crate::VERSION.into()),
                ("pid", std::process::id().into()),
                ("ppid", s.ppid().into()),
                ("argv", argv.into()),
                ("cwd", cwd.into()),
                ("mem_kbyte", rss.into()),
                ("mem_percent", ratio(rss, mem.total).into()),
                ("cpu_percent", own_cpu.into()),
                ("srs_uptime", ctx.started.elapsed().as_secs().into()),
            ]),
        ),
        (
            "system",
            obj([
                ("cpu_percent", sys_cpu.into()),
                ("disk_read_KBps", 0u64.into()),
                ("disk_write_KBps", 0u64.into()),
                ("disk_busy_percent", 0.0.into()),
                ("mem_ram_kbyte", mem.total.into()),
                ("mem_ram_percent", mem.ram_ratio().into()),
                ("mem_swap_kbyte", mem.swap_total.into()),
                ("mem_swap_percent", mem.swap_ratio().into()),
                ("cpus", procfs::cpus_online().into()),
                ("cpus_online", procfs::cpus_online().into()),
                ("uptime", uptime.into()),
                // SRS's spelling, kept for consoles that read it.
                ("ilde_time", idle.into()),
                ("load_1m", load[0].into()),
                ("load_5m", load[1].into()),
                ("load_15m", load[2].into()),
                ("net_sample_time", now.into()),
                ("net_recv_bytes", rx.into()),
                ("net_send_bytes", tx.into()),
                ("net_recvi_bytes", rxi.into()),
                ("net_sendi_bytes", txi.into()),
                ("srs_sample_time", now.into()),
                ("srs_recv_bytes", srs_recv.into()),
                ("srs_send_bytes", srs_send.into()),
                ("conn_sys", tcp.into()),
                ("conn_sys_et", est.into()),
                ("conn_sys_tw", tw.into()),
                ("conn_sys_udp", udp.into()),
                (
                    "conn_srs",
                    ctx.connections
                        .load(std::sync::atomic::Ordering::Relaxed)
                        .into(),
                ),
            ]),
        ),
    ])
}

pub fn rusages() -> Value {
    let s = procfs::SelfStat::read();
    let st = procfs::kv_file("/proc/self/status");
    let g = |k: &str| st.get(k).copied().unwrap_or(0);
    obj([
        ("ok", true.into()),
        (
            "sample_time",
            crate::app::runtime::log::now_unix_ms().into(),
        ),
        // Whole seconds, integers: SRS writes `ru_utime.tv_sec` and `ru_stime.tv_sec`.
        ("ru_utime", (s.utime() / procfs::TICKS as i64).into()),
        ("ru_stime", (s.stime() / procfs::TICKS as i64).into()),
        ("ru_maxrss", g("VmHWM").into()),
        ("ru_ixrss", 0u64.into()),
        ("ru_idrss", 0u64.into()),
        ("ru_isrss", 0u64.into()),
        ("ru_minflt", s.field(10).into()),
        ("ru_majflt", s.field(12).into()),
        ("ru_nswap", 0u64.into()),
        ("ru_inblock", 0u64.into()),
        ("ru_oublock", 0u64.into()),
        ("ru_msgsnd", 0u64.into()),
        ("ru_msgrcv", 0u64.into()),
        ("ru_nsignals", 0u64.into()),
        ("ru_nvcsw", g("voluntary_ctxt_switches").into()),
        ("ru_nivcsw", g("nonvoluntary_ctxt_switches").into()),
    ])
}

pub fn self_proc_stats() -> Value {
    let s = procfs::SelfStat::read();
    let (own, _) = procfs::cpu_percent();
    // proc(5) names, fields 4..=44.
    const NAMES: [&str; 41] = [
        "ppid",
        "pgrp",
        "session",
        "tty_nr",
        "tpgid",
        "flags",
        "minflt",
        "cminflt",
        "majflt",
        "cmajflt",
        "utime",
        "stime",
        "cutime",
        "cstime",
        "priority",
        "nice",
        "num_threads",
        "itrealvalue",
        "starttime",
        "vsize",
        "rss",
        "rsslim",
        "startcode",
        "endcode",
        "startstack",
        "kstkesp",
        "kstkeip",
        "signal",
        "blocked",
        "sigignore",
        "sigcatch",
        "wchan",
        "nswap",
        "cnswap",
        "exit_signal",
        "processor",
        "rt_priority",
        "policy",
        "delayacct_blkio_ticks",
        "guest_time",
        "cguest_time",
    ];
    let mut v = obj([
        ("ok", true.into()),
        (
            "sample_time",
            crate::app::runtime::log::now_unix_ms().into(),
        ),
        ("percent", own.into()),
        ("pid", std::process::id().into()),
        ("comm", s.comm.as_str().into()),
        ("state", s.state.as_str().into()),
    ]);
    for (i, name) in NAMES.iter().enumerate() {
        v.push(name, s.field(i + 4));
    }
    v
}

pub fn system_proc_stats() -> Value {
    let c = procfs::system_cpu();
    let (_, sys) = procfs::cpu_percent();
    obj([
        ("ok", true.into()),
        (
            "sample_time",
            crate::app::runtime::log::now_unix_ms().into(),
        ),
        ("percent", sys.into()),
        ("user", c[0].into()),
        ("nice", c[1].into()),
        ("sys", c[2].into()),
        ("idle", c[3].into()),
        ("iowait", c[4].into()),
        ("irq", c[5].into()),
        ("softirq", c[6].into()),
        ("steal", c[7].into()),
        ("guest", c[8].into()),
    ])
}

/// `/api/v1/meminfos`: SRS's fields and definitions (`MemActive` = total − free,
/// `RealInUse` = active − buffers − cached); `percent_ram`/`percent_swap` are 0–1.
pub fn meminfos() -> Value {
    let m = MemInfo::read();
    obj([
        ("ok", true.into()),
        (
            "sample_time",
            crate::app::runtime::log::now_unix_ms().into(),
        ),
        ("percent_ram", m.ram_ratio().into()),
        ("percent_swap", m.swap_ratio().into()),
        ("MemActive", m.active().into()),
        ("RealInUse", m.real_in_use().into()),
        ("NotInUse", m.total.saturating_sub(m.real_in_use()).into()),
        ("MemTotal", m.total.into()),
        ("MemFree", m.free.into()),
        ("Buffers", m.buffers.into()),
        ("Cached", m.cached.into()),
        ("SwapTotal", m.swap_total.into()),
        ("SwapFree", m.swap_free.into()),
    ])
}
