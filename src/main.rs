//! srsd: wires args -> config -> logging -> runtime -> app::run.

use srsd::config::Config;
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage:
  srsd                       run with the embedded default config
  srsd -c FILE               run with FILE
  srsd -w DIR ...             change into DIR first: -c FILE and every relative path of
                             the config are under it (as the config's `workdir` key)
  srsd -t [-c FILE]          test the config and exit
  srsd -v | --version        print the version
  srsd -s reload|reopen|stop|quit [-c FILE]   signal the running server (pid file)
  srsd <tool> ...            built-in tools: publish, play, bench, probe, bandcheck,
                             import-srs (SRS config to srsd TOML)";

struct Args {
    config: Option<PathBuf>,
    workdir: Option<PathBuf>,
    test: bool,
    signal: Option<String>,
    version: bool,
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut a = Args {
        config: None,
        workdir: None,
        test: false,
        signal: None,
        version: false,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-c" => a.config = Some(it.next().ok_or("-c needs a file")?.into()),
            "-w" => a.workdir = Some(it.next().ok_or("-w needs a directory")?.into()),
            "-t" => a.test = true,
            // Anywhere on the line, as SRS accepts `srsd -c f -v`.
            "-v" | "-V" | "--version" => a.version = true,
            "-s" => a.signal = Some(it.next().ok_or("-s needs reload|reopen|stop|quit")?.clone()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(a)
}

fn load(path: &Option<PathBuf>) -> Result<Config, String> {
    match path {
        Some(p) => Config::load(p).map_err(|e| {
            // An SRS config given as is: say how to convert it rather than where TOML failed.
            let srs = std::fs::read_to_string(p).is_ok_and(|t| srsd::config::looks_like_srs(&t));
            if srs {
                format!(
                    "{} is in SRS's config syntax; convert it with: srsd import-srs {} > srsd.toml",
                    p.display(),
                    p.display()
                )
            } else {
                e.to_string()
            }
        }),
        None => Ok(Config::embedded_default()),
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if let Some(first) = argv.first() {
        match first.as_str() {
            "-v" | "--version" | "-V" => {
                println!("{}", srsd::VERSION);
                return ExitCode::SUCCESS;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            tool if !tool.starts_with('-') => {
                return match srsd::tools::run(tool, &argv[1..]) {
                    Some(code) => ExitCode::from(code.clamp(0, 255) as u8),
                    None => {
                        eprintln!("srsd: unknown command {tool:?}\n{USAGE}");
                        ExitCode::from(2)
                    }
                };
            }
            _ => {}
        }
    }
    let args = match parse_args(&argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("srsd: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if args.version {
        println!("{}", srsd::VERSION);
        return ExitCode::SUCCESS;
    }
    let mut args = args;
    if let Some(dir) = &args.workdir {
        if let Err(e) = std::env::set_current_dir(dir) {
            eprintln!("srsd: -w {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    }
    let config = match load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("srsd: config error: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The `workdir` key: the config file is named before the move (reload reads it again).
    if args.workdir.is_none() && !config.workdir.is_empty() {
        if let Some(p) = args.config.as_mut() {
            if let Ok(abs) = std::path::absolute(&*p) {
                *p = abs;
            }
        }
        if let Err(e) = std::env::set_current_dir(&config.workdir) {
            eprintln!("srsd: workdir {}: {e}", config.workdir);
            return ExitCode::FAILURE;
        }
    }
    if args.test {
        println!(
            "srsd: the config {} is ok",
            args.config
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "(embedded)".into())
        );
        return ExitCode::SUCCESS;
    }
    if let Some(sig) = args.signal {
        return srsd::app::signal_running(&config, &sig);
    }

    // Pid file lock, then `daemon = true` forks (before any thread exists).
    let startup = match srsd::app::runtime::daemon::Startup::begin(&config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("srsd: {e}");
            return ExitCode::FAILURE;
        }
    };
    let log = match srsd::app::runtime::log::init(&config.log) {
        Ok(h) => h,
        Err(e) => return startup.fail(&format!("cannot open log {}: {e}", config.log.file)),
    };
    log::info!(
        "srsd {} starting, config {}",
        srsd::VERSION,
        match &args.config {
            Some(p) => p.display().to_string(),
            None => "(embedded default)".into(),
        }
    );
    let rt = match srsd::app::runtime::tasks::runtime_builder(config.workers as usize).build() {
        Ok(rt) => rt,
        Err(e) => return startup.fail(&format!("cannot start the runtime: {e}")),
    };
    // Handlers first, then the pid: see `Signals`.
    let signals = {
        let _in_runtime = rt.enter();
        match srsd::app::Signals::install() {
            Ok(s) => s,
            Err(e) => return startup.fail(&format!("cannot install signal handlers: {e}")),
        }
    };
    let pid_file = startup.ready();
    let result = rt.block_on(srsd::app::run(config, args.config, log, signals));
    drop(pid_file);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("srsd: {e}");
            eprintln!("srsd: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(all(target_env = "musl", feature = "dlmalloc"))]
#[global_allocator]
static GLOBAL: srsd::app::runtime::memory::Heap = srsd::app::runtime::memory::Heap;
