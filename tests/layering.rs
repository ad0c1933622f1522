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

/// The code of `dir`'s files without their comment lines and test modules (everything from
/// the first `#[cfg(test)]` on; `tests.rs` files entirely).
fn non_test_code(dir: &str) -> Vec<(std::path::PathBuf, Vec<(usize, String)>)> {
    let mut files = Vec::new();
    rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join(dir), &mut files);
    files
        .into_iter()
        .filter(|f| f.file_name().is_some_and(|n| n != "tests.rs"))
        .map(|f| {
            let text = std::fs::read_to_string(&f).expect("read source");
            let lines = text
                .lines()
                .enumerate()
                .take_while(|(_, l)| !l.contains("#[cfg(test)]"))
                .filter(|(_, l)| !l.trim_start().starts_with("//"))
                .map(|(n, l)| (n + 1, l.to_string()))
                .collect();
            (f, lines)
        })
        .collect()
}

/// DESIGN.md §2: the hub knows no protocol session. It reads frames through the media model
/// (`protocol::media`), never the RTMP session module.
#[test]
fn hub_does_not_import_the_rtmp_session() {
    let files = non_test_code("src/hub");
    assert!(files.len() >= 4, "found the hub sources");
    for (f, lines) in files {
        for (n, line) in lines {
            assert!(
                !line.contains("rtmp::session"),
                "{}:{n}: the hub imports the RTMP session module\n{line}",
                f.display()
            );
        }
    }
}

/// DESIGN.md §2: one FLV tag-header parser (`protocol::media::TagHeader`) reads a frame's
/// codec, packet kind, keyframe flag and cts once, when it enters the hub; the app reads the
/// frame's fields. No nibble of an FLV tag body (`b0 >> 4`, `& 0x0F`) and no byte of a frame's
/// payload is picked apart in src/app (tags read from a file, outside the hub, go through
/// `TagHeader::classify` itself).
#[test]
fn app_decodes_no_flv_tag_bytes() {
    let files = non_test_code("src/app");
    assert!(files.len() >= 20, "found the app sources");
    let nibble = |l: &str| {
        l.match_indices(">> 4")
            .any(|(i, _)| !l[i + 4..].starts_with(|c: char| c.is_ascii_digit()))
            || l.to_ascii_lowercase().contains("& 0x0f")
            || l.to_ascii_lowercase().contains("& 0xf0")
    };
    for (f, lines) in files {
        for (n, line) in lines {
            let bad = nibble(&line)
                || line.contains("payload.first()")
                || line.contains("payload[")
                || line.contains("payload.get(");
            assert!(
                !bad,
                "{}:{n}: FLV tag bytes decoded in src/app; read the frame's fields (hub::Frame: \
                 tag, codec(), cts(), flags, data())\n{line}",
                f.display()
            );
        }
    }
}
