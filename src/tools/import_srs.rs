//! `srsd import-srs SRS.conf > srsd.toml`: reads an SRS config (and the files it `include`s,
//! relative to its own directory first, then to the working directory, as SRS reads them
//! from where it runs) and prints srsd's TOML; how many directives were not imported goes to
//! stderr. Exit 0, 1 when the file cannot be read or parsed (`file:line:col: why`), 2 on bad
//! arguments.

use crate::config::import_srs;
use std::path::{Path, PathBuf};

const USAGE: &str = "usage: srsd import-srs SRS.conf > srsd.toml
  converts an SRS config (2.0 flat or 3+ nested syntax, with its includes) to srsd's TOML;
  directives with no srsd key are kept as comments that say why";

/// Largest config file read (SRS's own full.conf is ~100 KB).
const MAX_FILE: u64 = 4 << 20;

fn read(path: &Path) -> Result<String, String> {
    let len = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    if len > MAX_FILE {
        return Err(format!("{len} bytes, over {MAX_FILE}"));
    }
    std::fs::read_to_string(path).map_err(|e| e.to_string())
}

pub fn main(args: &[String]) -> i32 {
    let file = match args {
        [f] if f != "-h" && f != "--help" => PathBuf::from(f),
        [f] if f == "-h" || f == "--help" => {
            println!("{USAGE}");
            return 0;
        }
        _ => {
            eprintln!("{USAGE}");
            return 2;
        }
    };
    let shown = file.display().to_string();
    let text = match read(&file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("srsd import-srs: {shown}: cannot read: {e}");
            return 1;
        }
    };
    let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut load = |name: &str| {
        let near = dir.join(name);
        let path = if near.is_file() {
            near
        } else {
            PathBuf::from(name)
        };
        read(&path).map(|t| (path.display().to_string(), t))
    };
    let directives = match import_srs::parse(&text, &shown, &mut load) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("srsd import-srs: {e}");
            return 1;
        }
    };
    match import_srs::import(&directives, &shown) {
        Ok((toml, unmapped)) => {
            print!("{toml}");
            eprintln!(
                "srsd import-srs: {shown}: {unmapped} directive(s) not imported, kept as \
                 \"# not imported\" comments; check the result with srsd -t -c FILE"
            );
            0
        }
        Err(e) => {
            eprintln!("srsd import-srs: {shown}: {e}");
            1
        }
    }
}
