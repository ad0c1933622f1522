//! Conventions turned into checks: the protocol layer is sans-IO.

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read src dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn protocol_layer_uses_no_tokio_no_io_and_no_clock() {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/protocol"),
        &mut files,
    );
    assert!(files.len() >= 8, "found the protocol sources");
    let forbidden = [
        "tokio",
        "std::net",
        "std::fs",
        "Instant::now",
        "SystemTime::now",
        "std::thread",
    ];
    for f in files {
        let text = std::fs::read_to_string(&f).expect("read source");
        // Comments may name what the code must not use.
        let code: Vec<&str> = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect();
        for word in forbidden {
            if let Some(line) = code.iter().find(|l| l.contains(word)) {
                panic!(
                    "{} uses {word}: src/protocol must stay sans-IO\n{line}",
                    f.display()
                );
            }
        }
    }
}

/// 32-bit MIPS (OpenWrt mips/mipsel) has no 64-bit atomics: `AtomicU64` does not exist
/// there and the board build fails. Counters use `AtomicUsize` or a mutex.
#[test]
fn no_64_bit_atomics_anywhere() {
    let mut files = Vec::new();
    // The server and the C client library (clib/, built for every board too).
    for dir in ["src", "clib/src"] {
        rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join(dir), &mut files);
    }
    assert!(files.len() > 50, "the sources were found: {}", files.len());
    for f in files {
        let text = std::fs::read_to_string(&f).expect("read source");
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for word in ["AtomicU64", "AtomicI64"] {
                assert!(
                    !line.contains(word),
                    "{}:{}: {word} does not exist on 32-bit MIPS\n{line}",
                    f.display(),
                    n + 1
                );
            }
        }
    }
}
