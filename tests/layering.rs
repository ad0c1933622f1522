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

/// The concern folders of `src/app` in import order (DESIGN.md §1): a file may use its own
/// folder and any folder of a higher rank, never one of a lower rank, never a sibling of the
/// same rank. `shared.rs` is the bottom (everyone may use it); it alone names the state
/// types of the concerns, for the one `Context`. `app/mod.rs` wires everything.
const APP_ORDER: &[(&str, u8)] = &[
    ("rtmp", 0),
    ("http", 0),
    ("session", 1),
    ("outputs", 2),
    ("cluster", 3),
    ("ffmpeg", 3),
    ("hooks", 4),
    ("runtime", 5),
    ("shared", 6),
];

/// The module path of a source file under `src/app`: `["app", "http", "live"]`.
fn module_path(root: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(root).expect("under src");
    let mut parts: Vec<String> = rel
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// Every `crate::app::X` or `super::...::X` reference of a line, resolved to the `src/app`
/// concern it names (`X` for `crate::app::X`), given the module the line is in.
fn app_targets(line: &str, module: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < line.len() {
        let rest = &line[i..];
        let at_word = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if at_word && rest.starts_with("crate::app::") {
            let name: String = rest["crate::app::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '{')
                .collect();
            out.push(name);
            i += "crate::app::".len();
        } else if at_word && rest.starts_with("super::") {
            let mut n = 0;
            let mut r = rest;
            while let Some(t) = r.strip_prefix("super::") {
                n += 1;
                r = t;
            }
            let base = &module[..module.len().saturating_sub(n)];
            let name: String = r
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '{' || *c == '*')
                .collect();
            // `super::X` from a file directly in `src/app` (or `super::super::X` from deeper)
            // names the concern X; anything that stays inside a concern is that concern.
            match base {
                [app] if app == "app" => out.push(name),
                [app, concern, ..] if app == "app" => out.push(concern.clone()),
                _ => {}
            }
            i += n * "super::".len();
        } else {
            i += rest.chars().next().map_or(1, char::len_utf8);
        }
    }
    out
}

#[test]
fn app_imports_run_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src.join("app"), &mut files);
    assert!(files.len() > 30, "found the app sources: {}", files.len());
    let rank = |name: &str| APP_ORDER.iter().find(|(n, _)| *n == name).map(|(_, r)| *r);
    let mut wrong = Vec::new();
    for f in &files {
        let module = module_path(&src, f);
        // `app/mod.rs` wires every concern; `shared.rs` names their state types.
        let Some(own) = module.get(1).cloned() else {
            continue;
        };
        if own == "shared" {
            continue;
        }
        let own_rank =
            rank(&own).unwrap_or_else(|| panic!("{}: a folder outside APP_ORDER", f.display()));
        let text = std::fs::read_to_string(f).expect("read source");
        let mut in_tests = false;
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            if code.starts_with("mod tests") {
                in_tests = true;
            }
            let mut here = module.clone();
            if in_tests {
                here.push("tests".into());
            }
            for target in app_targets(line, &here) {
                if target.starts_with('{') {
                    wrong.push(format!(
                        "{}:{}: one concern per `use crate::app::` line",
                        f.display(),
                        n + 1
                    ));
                    continue;
                }
                if target == own || target == "*" {
                    continue;
                }
                match rank(&target) {
                    Some(r) if r > own_rank => {}
                    _ => wrong.push(format!(
                        "{}:{}: {own} uses {target}\n    {}",
                        f.display(),
                        n + 1,
                        line.trim()
                    )),
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the order of DESIGN.md §1 ({APP_ORDER:?}):\n{}",
        wrong.join("\n")
    );
}

/// DESIGN.md §1: a module over ~800 lines is split by sub-state or feature.
#[test]
fn no_source_file_over_800_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["src", "clib/src"] {
        rust_files(&root.join(dir), &mut files);
    }
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let lines = std::fs::read_to_string(f)
                .expect("read source")
                .lines()
                .count();
            (lines > 800).then(|| format!("{}: {lines} lines", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "split these files:\n{}", long.join("\n"));
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
