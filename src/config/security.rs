//! The rules of `[vhost.X.security]`, parsed when the config loads (SRS
//! `srs_app_security.cpp` semantics; the policy that applies them is `app::access`).
//!
//! A rule is `"publish|play TARGET"`, TARGET `all`, an IP or a CIDR (IPv4 or IPv6).
//! IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) compare as IPv4, on both the client and the
//! rule side. A config with a malformed rule is refused at load with the rule's line (`srsd
//! -t` says why); a rule built at runtime that does not parse still fails closed.

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

/// One `"publish|play TARGET"` rule. In a config it is parsed at load (serde's `try_from`
/// a string): a malformed rule is refused there with its `file:line:col`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct Rule {
    /// `None` when the action word is not `publish` or `play` (the rule matches nothing
    /// as allow, everything as deny).
    pub action: Option<Action>,
    pub target: Target,
    /// The rule as written, for messages.
    pub text: String,
}

/// A rule equals the text it was written as (trimmed).
impl PartialEq<&str> for Rule {
    fn eq(&self, other: &&str) -> bool {
        self.text == other.trim()
    }
}

impl TryFrom<String> for Rule {
    type Error = String;

    fn try_from(text: String) -> Result<Rule, String> {
        let rule = Rule::parse(&text);
        match rule.error() {
            Some(why) => Err(why),
            None => Ok(rule),
        }
    }
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
    pub fn matches(&self, action: Action, ip: IpAddr, fail_closed: bool) -> bool {
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
