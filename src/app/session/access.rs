//! Who may publish or play: the `refer` (page URL) and `security` (client IP) rules of a
//! vhost, with SRS's semantics. Pure functions: the RTMP and HTTP code asks, then answers the
//! client (RTMP error status, HTTP 403) and logs the reason.
//!
//! refer (SRS `srs_app_refer.cpp`): when enabled, the `all` list and then the action's list
//! must each pass. An empty list passes. Otherwise the page URL's host (scheme, user info,
//! port, path, query and fragment removed) must end with one of the entries. SRS compares the
//! plain string suffix, so `"github.com"` allows `www.github.com` and also `notgithub.com`;
//! write `".github.com"` to require a dot before it. Differences from SRS, all stricter or
//! DNS-correct: hosts compare ASCII-case-insensitively, `?`/`#`/user info cannot smuggle a
//! suffix (`http://a.com?x=.github.com` is `a.com`), and an empty entry matches nothing.
//! The page URL comes from the client, so refer is a courtesy check, not authentication.
//!
//! security (SRS `srs_app_security.cpp`): when enabled, a client must match no `deny` rule
//! and at least one `allow` rule of its action; no rules at all denies everyone. A rule is
//! `"publish|play TARGET"`, TARGET `all`, an IP or a CIDR (IPv4 or IPv6). IPv4-mapped IPv6
//! addresses (`::ffff:10.0.0.1`, what a dual-stack listener reports) compare as IPv4, on
//! both the client and the rule side. A rule whose target does not parse fails closed: as an
//! allow rule it matches no one, as a deny rule it matches everyone.

pub use crate::config::security::{normalize, Action, Rule, Target};
use crate::config::{ReferConfig, SecurityConfig};
use std::net::IpAddr;

// ---------------------------------------------------------------------------------------
// refer

/// Whether the page URL a client sent passes the vhost's refer rules for `action`.
pub fn refer_allows(cfg: &ReferConfig, action: Action, page_url: &str) -> bool {
    if !cfg.enabled {
        return true;
    }
    let list = match action {
        Action::Publish => &cfg.publish,
        Action::Play => &cfg.play,
    };
    refer_list_allows(&cfg.all, page_url) && refer_list_allows(list, page_url)
}

/// One refer list: empty passes, else the host must end with one of the entries.
pub fn refer_list_allows(list: &[String], page_url: &str) -> bool {
    if list.is_empty() {
        return true;
    }
    let host = page_host(page_url);
    list.iter().any(|entry| host_matches(host, entry))
}

fn host_matches(host: &str, entry: &str) -> bool {
    let entry = entry.trim();
    if entry.is_empty() || host.len() < entry.len() {
        return false;
    }
    // Bytes, not str: the suffix may start inside a multi-byte char, and slicing bytes
    // cannot panic there.
    host.as_bytes()[host.len() - entry.len()..].eq_ignore_ascii_case(entry.as_bytes())
}

/// The host of a page URL: `http://user@www.a.com:8080/x?y#z` -> `www.a.com`, `[::1]` for an
/// IPv6 literal. Never fails: whatever is there is the host (possibly empty).
pub fn page_host(page_url: &str) -> &str {
    let s = page_url.trim();
    let s = s.split_once("://").map_or(s, |(_, rest)| rest);
    // The authority ends at the first '/', '?' or '#'.
    let end = s.find(['/', '?', '#']).unwrap_or(s.len());
    let authority = &s[..end];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    if host_port.starts_with('[') {
        // IPv6 literal: keep the brackets, drop the port.
        return match host_port.find(']') {
            Some(i) => &host_port[..=i],
            None => host_port,
        };
    }
    host_port.split_once(':').map_or(host_port, |(h, _)| h)
}

// ---------------------------------------------------------------------------------------
// security

/// Ok when `ip` may do `action` under `cfg` (its rules were parsed at load), in SRS's order:
/// a matching deny rule refuses, then a matching allow rule admits, else refused. Why not
/// names the rule (or counts the allow rules that did not match).
pub fn security_allows(cfg: &SecurityConfig, action: Action, ip: IpAddr) -> Result<(), String> {
    if !cfg.enabled {
        return Ok(());
    }
    let ip = normalize(ip);
    if let Some(r) = cfg.deny.iter().find(|r| r.matches(action, ip, true)) {
        return Err(format!(
            "security: {action} from {ip} denied by deny rule \"{}\"",
            r.text
        ));
    }
    if cfg.allow.iter().any(|r| r.matches(action, ip, false)) {
        return Ok(());
    }
    let n = cfg
        .allow
        .iter()
        .filter(|r| r.action == Some(action))
        .count();
    Err(format!(
        "security: {action} from {ip} matches none of the {n} allow rule(s) for {action}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refer(all: &[&str], play: &[&str], publish: &[&str]) -> ReferConfig {
        let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        ReferConfig {
            enabled: true,
            all: v(all),
            play: v(play),
            publish: v(publish),
        }
    }

    #[test]
    fn page_host_strips_scheme_userinfo_port_path_query() {
        for (url, host) in [
            ("http://www.github.com/a/b", "www.github.com"),
            ("https://www.github.com:8080/x", "www.github.com"),
            ("www.github.com", "www.github.com"),
            ("www.github.com:80", "www.github.com"),
            ("http://a.com?x=.github.com", "a.com"),
            ("http://a.com#.github.com", "a.com"),
            ("http://github.com:x@evil.com/", "evil.com"),
            ("http://[::1]:8080/p", "[::1]"),
            ("http://[::1", "[::1"),
            ("", ""),
            ("://", ""),
            ("http://", ""),
        ] {
            assert_eq!(page_host(url), host, "{url}");
        }
    }

    #[test]
    fn refer_matches_host_suffix_like_srs() {
        let cfg = refer(&[], &["github.com", "ossrs.net"], &[]);
        for (url, ok) in [
            ("http://www.github.com/x", true),
            ("http://github.com", true),
            ("https://WWW.GitHub.COM:443/", true),
            ("http://notgithub.com/", true), // SRS: plain suffix
            ("http://github.com.evil.com/", false),
            ("http://ossrs.net/", true),
            ("http://github.co/", false),
            ("", false),
            ("http://a.com?x=github.com", false),
        ] {
            assert_eq!(refer_allows(&cfg, Action::Play, url), ok, "{url}");
            // The publish list is empty: it passes.
            assert!(refer_allows(&cfg, Action::Publish, url), "{url}");
        }
    }

    #[test]
    fn refer_checks_all_then_the_action_list() {
        let cfg = refer(&["a.com"], &["b.a.com"], &["c.a.com"]);
        assert!(refer_allows(&cfg, Action::Play, "http://b.a.com/"));
        assert!(!refer_allows(&cfg, Action::Play, "http://c.a.com/"));
        assert!(refer_allows(&cfg, Action::Publish, "http://c.a.com/"));
        assert!(!refer_allows(&cfg, Action::Publish, "http://c.b.com/"));
        let disabled = ReferConfig {
            enabled: false,
            ..cfg
        };
        assert!(refer_allows(&disabled, Action::Play, ""));
        // An empty entry matches nothing.
        assert!(!refer_allows(&refer(&[""], &[], &[]), Action::Play, ""));
    }

    fn sec(allow: &[&str], deny: &[&str]) -> SecurityConfig {
        SecurityConfig {
            enabled: true,
            allow: allow.iter().map(|s| Rule::parse(s)).collect(),
            deny: deny.iter().map(|s| Rule::parse(s)).collect(),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test ip")
    }

    /// (allow rules, deny rules, action, client IP, allowed).
    type SecurityCase = (
        &'static [&'static str],
        &'static [&'static str],
        Action,
        &'static str,
        bool,
    );

    #[test]
    fn security_table() {
        use Action::{Play, Publish};
        let cases: &[SecurityCase] = &[
            (&["publish all"], &[], Publish, "1.2.3.4", true),
            (&["publish all"], &[], Play, "1.2.3.4", false),
            (&[], &[], Play, "1.2.3.4", false),
            (&["play all"], &["play 1.2.3.4"], Play, "1.2.3.4", false),
            (&["play all"], &["play 1.2.3.4"], Play, "1.2.3.5", true),
            (&["play 10.0.0.0/8"], &[], Play, "10.255.0.1", true),
            (&["play 10.0.0.0/8"], &[], Play, "11.0.0.1", false),
            (&["play 10.0.0.0/8"], &[], Play, "::ffff:10.1.1.1", true),
            (&["play 10.1.2.3/8"], &[], Play, "10.9.9.9", true),
            (&["play 0.0.0.0/0"], &[], Play, "8.8.8.8", true),
            (&["play 0.0.0.0/0"], &[], Play, "::1", false),
            (&["publish 127.0.0.1"], &[], Publish, "127.0.0.1", true),
            (
                &["publish 127.0.0.1"],
                &[],
                Publish,
                "::ffff:127.0.0.1",
                true,
            ),
            (
                &["publish ::ffff:127.0.0.1"],
                &[],
                Publish,
                "127.0.0.1",
                true,
            ),
            (&["play ::ffff:10.0.0.0/104"], &[], Play, "10.3.3.3", true),
            (&["play ::1"], &[], Play, "::1", true),
            (&["play ::1"], &[], Play, "127.0.0.1", false),
            (&["play 2001:db8::/32"], &[], Play, "2001:db8:1::5", true),
            (&["play 2001:db8::/32"], &[], Play, "2001:db9::5", false),
            (
                &["play all"],
                &["play 2001:db8::/32"],
                Play,
                "2001:db8::1",
                false,
            ),
            (&["publish 10.0.0.0/8"], &[], Play, "10.0.0.1", false),
            // Malformed rules fail closed.
            (&["play 10.0.0.300"], &[], Play, "10.0.0.1", false),
            (&["play all"], &["play nonsense"], Play, "10.0.0.1", false),
            (&["play all"], &["watch all"], Play, "10.0.0.1", false),
            (
                &["play all"],
                &["publish 1.2.3.4/33"],
                Play,
                "10.0.0.1",
                true,
            ),
        ];
        for (allow, deny, action, addr, ok) in cases {
            let r = security_allows(&sec(allow, deny), *action, ip(addr));
            assert_eq!(r.is_ok(), *ok, "{allow:?} {deny:?} {action} {addr}: {r:?}");
        }
    }

    #[test]
    fn security_disabled_allows_everyone() {
        let cfg = SecurityConfig {
            enabled: false,
            allow: vec![],
            deny: vec![Rule::parse("play all")],
        };
        assert!(security_allows(&cfg, Action::Play, ip("1.1.1.1")).is_ok());
    }

    #[test]
    fn security_errors_name_the_rule() {
        let cfg = sec(&["play all"], &["play 10.0.0.0/8"]);
        let e = security_allows(&cfg, Action::Play, ip("10.0.0.1")).unwrap_err();
        assert!(e.contains("deny rule \"play 10.0.0.0/8\""), "{e}");
        let e = security_allows(&cfg, Action::Publish, ip("10.0.0.1")).unwrap_err();
        assert!(e.contains("none of the 0 allow rule(s) for publish"), "{e}");
    }

    #[test]
    fn rule_errors_are_reported() {
        for bad in [
            "play",
            "play 1.2.3.4 extra",
            "watch all",
            "play 1.2.3.4/33",
            "play ::/129",
            "play 1.2.3.4/x",
            "play host.example",
            "play ::ffff:1.2.3.4/90",
        ] {
            assert!(Rule::parse(bad).error().is_some(), "{bad}");
        }
        for good in [
            "play all",
            "publish 1.2.3.4",
            "play ::1",
            "play 10.0.0.0/8",
            "play ::/0",
        ] {
            assert_eq!(Rule::parse(good).error(), None, "{good}");
        }
        // A rule that does not parse fails closed: a malformed deny refuses everyone, a
        // malformed allow admits no one (a config cannot hold one: it is refused at load).
        let cfg = sec(&["play x"], &["watch all"]);
        assert!(security_allows(&cfg, Action::Publish, ip("10.0.0.1")).is_err());
        let cfg = sec(&["play x"], &[]);
        assert!(security_allows(&cfg, Action::Play, ip("10.0.0.1")).is_err());
        assert!(Rule::try_from("play x".to_string()).is_err());
        assert!(Rule::try_from("play 10.0.0.0/8".to_string()).is_ok());
    }
}
