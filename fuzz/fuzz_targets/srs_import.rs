//! The SRS config importer of `srsd import-srs` (src/config/import_srs): any text parses or
//! fails with `file:line:col: reason` at a line that exists. `include inc.conf` splices a
//! small vhost, `include loop.conf` a file that includes itself (the include depth bound ends
//! it), any other include is not found: nothing touches the filesystem. What parses imports
//! into TOML that `Config::parse` accepts, as `srsd import-srs` promises (`srsd -t` accepts
//! every output).
#![no_main]
use libfuzzer_sys::fuzz_target;
use srsd::config::import_srs::{import, parse};
use srsd::config::Config;

const INC: &str = "vhost inc.test {\n    play { gop_cache off; }\n}\n";
const LOOP: &str = "listen 1935;\ninclude loop.conf;\n";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut load = |name: &str| match name {
        "inc.conf" => Ok((name.to_string(), INC.to_string())),
        "loop.conf" => Ok((name.to_string(), LOOP.to_string())),
        _ => Err("not found".to_string()),
    };
    match parse(text, "srs.conf", &mut load) {
        Ok(d) => {
            let (toml, _) = import(&d, "srs.conf").expect("an import of what parses");
            if let Err(e) = Config::parse(&toml, "x.toml") {
                panic!("srsd rejects its own import: {e}\n{toml}");
            }
        }
        Err(e) => {
            assert!(e.at.line >= 1 && e.at.col >= 1, "{e}");
            let lines = match e.at.file.as_str() {
                "srs.conf" => text.lines().count(),
                "inc.conf" => INC.lines().count(),
                "loop.conf" => LOOP.lines().count(),
                other => panic!("an error in {other}: {e}"),
            };
            assert!(e.at.line <= lines + 1, "{e}");
        }
    }
});
