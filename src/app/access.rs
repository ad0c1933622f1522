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

use crate::config::{ReferConfig, SecurityConfig};
use std::fmt;
use std::net::IpAddr;

/// What a client asks to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Publish,
    Play,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Publish => "publish",
            Action::Play => "play",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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

/// Who a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    All,
    Ip(IpAddr),
    /// A network: the address with its host bits cleared, and the prefix length.
    Net(IpAddr, u8),
    /// A target that does not parse; kept so it fails closed and is reported.
    Invalid(String),
}

/// One `"publish|play TARGET"` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `None` when the action word is not `publish` or `play` (the rule matches nothing
    /// as allow, everything as deny).
    pub action: Option<Action>,
    pub target: Target,
    /// The rule as written, for messages.
    pub text: String,
}

impl Rule {
    /// Parses a rule. Never fails: a bad rule is kept with an `Invalid` target or no action,
    /// see [`Rule::error`].
    pub fn parse(text: &str) -> Rule {
        let mut words = text.split_whitespace();
        let (action_word, target_word, extra) = (words.next(), words.next(), words.next());
        let action = match action_word {
            Some("publish") => Some(Action::Publish),
            Some("play") => Some(Action::Play),
            _ => None,
        };
        let target = match (target_word, extra) {
            (Some(t), None) => parse_target(t),
            _ => Target::Invalid(format!("want \"publish|play all|IP|CIDR\", got \"{text}\"")),
        };
        Rule {
            action,
            target,
            text: text.trim().to_string(),
        }
    }

    /// Why this rule is malformed, if it is. Config validation can call this to reject the
    /// rule with its line.
    pub fn error(&self) -> Option<String> {
        if self.action.is_none() {
            return Some(format!(
                "bad rule \"{}\": the action must be publish or play",
                self.text
            ));
        }
        match &self.target {
            Target::Invalid(why) => Some(format!("bad rule \"{}\": {why}", self.text)),
            _ => None,
        }
    }

    /// Whether this rule names `action` and `ip` (`ip` already normalised). `fail_closed`
    /// is what a malformed rule answers.
    fn matches(&self, action: Action, ip: IpAddr, fail_closed: bool) -> bool {
        let Some(own) = self.action else {
            return fail_closed;
        };
        if own != action {
            return false;
        }
        match &self.target {
            Target::All => true,
            Target::Ip(a) => *a == ip,
            Target::Net(net, len) => in_net(ip, *net, *len),
            Target::Invalid(_) => fail_closed,
        }
    }
}

/// `all`, `10.0.0.1`, `10.0.0.0/8`, `::1`, `2001:db8::/32`, `::ffff:10.0.0.0/104`.
fn parse_target(t: &str) -> Target {
    if t == "all" {
        return Target::All;
    }
    let (addr, len) = match t.split_once('/') {
        Some((a, l)) => match l.parse::<u8>() {
            Ok(l) => (a, Some(l)),
            Err(_) => return Target::Invalid(format!("bad prefix length \"{l}\"")),
        },
        None => (t, None),
    };
    let Ok(ip) = addr.parse::<IpAddr>() else {
        return Target::Invalid(format!("\"{addr}\" is not an IP address"));
    };
    // A mapped rule address is an IPv4 rule; its prefix counts the 96 mapping bits.
    let (ip, len) = match (ip, len) {
        (IpAddr::V6(v6), len) if v6.to_ipv4_mapped().is_some() => {
            let v4 = IpAddr::V4(
                v6.to_ipv4_mapped()
                    .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
            );
            match len {
                None => (v4, None),
                Some(l) if (96..=128).contains(&l) => (v4, Some(l - 96)),
                Some(l) => {
                    return Target::Invalid(format!(
                        "prefix /{l} of a mapped IPv4 address must be 96..=128"
                    ))
                }
            }
        }
        other => other,
    };
    match len {
        None => Target::Ip(ip),
        Some(l) => {
            let max = if ip.is_ipv4() { 32 } else { 128 };
            if l > max {
                return Target::Invalid(format!("prefix /{l} is longer than {max}"));
            }
            Target::Net(mask(ip, l), l)
        }
    }
}

/// `ip` with all but its first `len` bits cleared.
fn mask(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let m = u32::MAX
                .checked_shl(32 - u32::from(len.min(32)))
                .unwrap_or(0);
            IpAddr::V4((u32::from(a) & m).into())
        }
        IpAddr::V6(a) => {
            let m = u128::MAX
                .checked_shl(128 - u32::from(len.min(128)))
                .unwrap_or(0);
            IpAddr::V6((u128::from(a) & m).into())
        }
    }
}

fn in_net(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    ip.is_ipv4() == net.is_ipv4() && mask(ip, len) == net
}

/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`) as the IPv4 address it stands for.
pub fn normalize(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// A vhost's security rules, parsed once (per config load).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecurityRules {
    pub enabled: bool,
    pub allow: Vec<Rule>,
    pub deny: Vec<Rule>,
}

impl SecurityRules {
    pub fn parse(cfg: &SecurityConfig) -> SecurityRules {
        SecurityRules {
            enabled: cfg.enabled,
            allow: cfg.allow.iter().map(|r| Rule::parse(r)).collect(),
            deny: cfg.deny.iter().map(|r| Rule::parse(r)).collect(),
        }
    }

    /// Every malformed rule, as "allow: why" / "deny: why".
    pub fn errors(&self) -> Vec<String> {
        let allow = self
            .allow
            .iter()
            .filter_map(|r| r.error().map(|e| format!("allow: {e}")));
        let deny = self
            .deny
            .iter()
            .filter_map(|r| r.error().map(|e| format!("deny: {e}")));
        allow.chain(deny).collect()
    }

    /// Ok when `ip` may do `action`; else why not, naming the rule.
    pub fn allows(&self, action: Action, ip: IpAddr) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        let ip = normalize(ip);
        if let Some(r) = self.deny.iter().find(|r| r.matches(action, ip, true)) {
            return Err(match r.error() {
                Some(e) => {
                    format!("security: {action} from {ip} denied by malformed deny rule: {e}")
                }
                None => format!(
                    "security: {action} from {ip} denied by deny rule \"{}\"",
                    r.text
                ),
            });
        }
        if self.allow.iter().any(|r| r.matches(action, ip, false)) {
            return Ok(());
        }
        let n = self
            .allow
            .iter()
            .filter(|r| r.action == Some(action))
            .count();
        Err(format!(
            "security: {action} from {ip} matches none of the {n} allow rule(s) for {action}"
        ))
    }
}

/// [`SecurityRules::parse`] then [`SecurityRules::allows`], for callers that do not keep the
/// parsed rules.
pub fn security_allows(cfg: &SecurityConfig, action: Action, ip: IpAddr) -> Result<(), String> {
    if !cfg.enabled {
        return Ok(());
    }
    SecurityRules::parse(cfg).allows(action, ip)
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
            allow: allow.iter().map(|s| s.to_string()).collect(),
            deny: deny.iter().map(|s| s.to_string()).collect(),
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
            deny: vec!["play all".into()],
        };
        assert!(security_allows(&cfg, Action::Play, ip("1.1.1.1")).is_ok());
    }

    #[test]
    fn security_errors_name_the_rule() {
        let rules = SecurityRules::parse(&sec(&["play all"], &["play 10.0.0.0/8"]));
        let e = rules.allows(Action::Play, ip("10.0.0.1")).unwrap_err();
        assert!(e.contains("deny rule \"play 10.0.0.0/8\""), "{e}");
        let e = rules.allows(Action::Publish, ip("10.0.0.1")).unwrap_err();
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
        let rules = SecurityRules::parse(&sec(&["play x"], &["watch all"]));
        assert_eq!(rules.errors().len(), 2);
    }
}
