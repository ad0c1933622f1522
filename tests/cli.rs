//! The command line as users run it (CONTRACTS.md §1).

mod common;

use std::process::Command;

fn srsd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_srsd"))
}

#[test]
fn version_and_config_test() {
    for args in [
        &["-v"][..],
        &["--version"],
        &["-c", "nonexistent.toml", "-v"],
    ] {
        let out = srsd().args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), srsd::VERSION);
    }

    let out = srsd().arg("-t").output().unwrap();
    assert!(out.status.success(), "the embedded default config is ok");

    let dir = common::temp_dir("cli");
    let good = dir.join("good.toml");
    std::fs::write(&good, "listen = [\"127.0.0.1:19999\"]\n").unwrap();
    assert!(srsd()
        .args(["-t", "-c"])
        .arg(&good)
        .output()
        .unwrap()
        .status
        .success());

    let full = concat!(env!("CARGO_MANIFEST_DIR"), "/conf/full.toml");
    assert!(
        srsd()
            .args(["-t", "-c", full])
            .output()
            .unwrap()
            .status
            .success(),
        "conf/full.toml is valid"
    );
}

#[test]
fn bad_config_names_file_line_and_column() {
    let dir = common::temp_dir("cli-bad");
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "listen = [\"1935\"]\n\n[vhost.\"__defaultVhost__\".play]\ngop_cach = true\n",
    )
    .unwrap();
    let out = srsd().args(["-t", "-c"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:4:1"), "{err}");
    assert!(err.contains("gop_cach"), "{err}");
}

#[test]
fn unknown_arguments_and_tools_exit_2() {
    assert_eq!(srsd().arg("-x").output().unwrap().status.code(), Some(2));
    assert_eq!(
        srsd().arg("nosuchtool").output().unwrap().status.code(),
        Some(2)
    );
    assert_eq!(
        srsd().args(["bench"]).output().unwrap().status.code(),
        Some(2)
    );
}

/// The README's configuration example is a valid config (it is what users copy).
#[test]
fn readme_config_example_parses() {
    let readme = include_str!("../README.md");
    let start = readme
        .find("```toml\n")
        .expect("a toml block in the README")
        + 8;
    let len = readme[start..].find("```").expect("the block ends");
    let example = &readme[start..start + len];
    assert!(
        example.contains("[vhost."),
        "the example shows vhost tables"
    );
    if let Err(e) = srsd::config::Config::parse(example, "README.md") {
        panic!("README example: {e}");
    }
}
