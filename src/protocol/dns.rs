//! DNS A/AAAA queries and answers (RFC 1035 §4, RFC 3596), sans-IO: a query's bytes out, an
//! answer's bytes in, the addresses of the name out.
//!
//! Only what a stub resolver needs to find an origin, a forward destination or a hook server
//! where the system resolver cannot (Android has no `/etc/resolv.conf` for musl to read): one
//! question, recursion desired, answers followed through CNAME chains, compression pointers
//! followed with a bound. Everything in an answer is hostile: lengths are checked, pointers may
//! only point backwards and at most [`MAX_POINTERS`] of them are followed per name, at most
//! [`MAX_ADDRESSES`] addresses are kept. The UDP exchange lives in `src/app/dns.rs`.

use std::fmt;

/// Record types asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryType {
    /// IPv4 address (type 1).
    A,
    /// IPv6 address (type 28).
    Aaaa,
}

impl QueryType {
    fn code(self) -> u16 {
        match self {
            QueryType::A => TYPE_A,
            QueryType::Aaaa => TYPE_AAAA,
        }
    }
}

const TYPE_A: u16 = 1;
const TYPE_CNAME: u16 = 5;
const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;
const HEADER_LEN: usize = 12;
/// Compression pointers followed while reading one name.
pub const MAX_POINTERS: usize = 16;
/// Addresses kept from one answer.
pub const MAX_ADDRESSES: usize = 16;
/// CNAMEs followed from the name asked for.
const MAX_CNAMES: usize = 8;

/// An address from an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Address {
    V4([u8; 4]),
    V6([u8; 16]),
}

/// Why a name cannot be asked for or an answer was not usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsError {
    /// The name is empty, has an empty or over-63-byte label, or is over 253 bytes.
    BadName,
    /// The answer is shorter than its header or a record it announces.
    Truncated,
    /// The answer is for another query (id, question, or not a response).
    Mismatch,
    /// A name in the answer is malformed (a forward or looping pointer, a reserved label type).
    BadAnswerName,
    /// The server answered with this RCODE (3: the name does not exist).
    Rcode(u8),
    /// The server set TC: the answer did not fit in UDP.
    TruncatedFlag,
}

impl fmt::Display for DnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DnsError::BadName => write!(f, "not a valid host name"),
            DnsError::Truncated => write!(f, "answer cut short"),
            DnsError::Mismatch => write!(f, "answer to another query"),
            DnsError::BadAnswerName => write!(f, "malformed name in the answer"),
            DnsError::Rcode(3) => write!(f, "no such name (NXDOMAIN)"),
            DnsError::Rcode(2) => write!(f, "server failure (SERVFAIL)"),
            DnsError::Rcode(5) => write!(f, "refused by the server"),
            DnsError::Rcode(n) => write!(f, "server answered RCODE {n}"),
            DnsError::TruncatedFlag => write!(f, "answer truncated (TC), too large for UDP"),
        }
    }
}

impl std::error::Error for DnsError {}

/// The labels of `name` (a trailing dot allowed), lowercase, checked for length.
fn labels(name: &str) -> Result<Vec<&str>, DnsError> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 253 {
        return Err(DnsError::BadName);
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels.iter().any(|l| l.is_empty() || l.len() > 63) {
        return Err(DnsError::BadName);
    }
    Ok(labels)
}

/// The bytes of a standard query with id `id` for `name`, recursion desired.
pub fn encode_query(id: u16, name: &str, qtype: QueryType) -> Result<Vec<u8>, DnsError> {
    let labels = labels(name)?;
    let mut q = Vec::with_capacity(HEADER_LEN + name.len() + 6);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00]); // RD
    q.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // QDCOUNT 1
    for l in labels {
        q.push(l.len() as u8);
        q.extend_from_slice(l.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.code().to_be_bytes());
    q.extend_from_slice(&CLASS_IN.to_be_bytes());
    Ok(q)
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, DnsError> {
    match b.get(at..at + 2) {
        Some(x) => Ok(u16::from_be_bytes([x[0], x[1]])),
        None => Err(DnsError::Truncated),
    }
}

/// Reads the name at `at`: (the name lowercased with dots, the offset just past it where it
/// started). Pointers must point before the place they are read at, so they cannot loop.
fn read_name(b: &[u8], mut at: usize) -> Result<(String, usize), DnsError> {
    let mut name = String::new();
    let mut end = None;
    let mut pointers = 0;
    loop {
        let len = *b.get(at).ok_or(DnsError::Truncated)?;
        match len & 0xC0 {
            0x00 if len == 0 => {
                return Ok((name, end.unwrap_or(at + 1)));
            }
            0x00 => {
                let label = b
                    .get(at + 1..at + 1 + usize::from(len))
                    .ok_or(DnsError::Truncated)?;
                if name.len() + label.len() > 255 {
                    return Err(DnsError::BadAnswerName);
                }
                if !name.is_empty() {
                    name.push('.');
                }
                name.extend(label.iter().map(|c| char::from(c.to_ascii_lowercase())));
                at += 1 + usize::from(len);
            }
            0xC0 => {
                let target = usize::from(u16_at(b, at)? & 0x3FFF);
                pointers += 1;
                if target >= at || pointers > MAX_POINTERS {
                    return Err(DnsError::BadAnswerName);
                }
                end.get_or_insert(at + 2);
                at = target;
            }
            _ => return Err(DnsError::BadAnswerName),
        }
    }
}

/// Parses the answer to the query [`encode_query`] made with `id`, `name` and `qtype`: the
/// addresses of `qtype` owned by `name` or by a name it is a CNAME of (in the answer section,
/// at most [`MAX_ADDRESSES`]). An empty list: the name exists without such records.
pub fn parse_answer(
    answer: &[u8],
    id: u16,
    name: &str,
    qtype: QueryType,
) -> Result<Vec<Address>, DnsError> {
    if answer.len() < HEADER_LEN {
        return Err(DnsError::Truncated);
    }
    let flags = u16_at(answer, 2)?;
    if u16_at(answer, 0)? != id || flags & 0x8000 == 0 || (flags >> 11) & 0xF != 0 {
        return Err(DnsError::Mismatch);
    }
    if flags & 0x0200 != 0 {
        return Err(DnsError::TruncatedFlag);
    }
    let rcode = (flags & 0xF) as u8;
    if rcode != 0 {
        return Err(DnsError::Rcode(rcode));
    }
    let qdcount = u16_at(answer, 4)?;
    let ancount = u16_at(answer, 6)?;
    if qdcount != 1 {
        return Err(DnsError::Mismatch);
    }
    let asked = labels(name)?.join(".").to_ascii_lowercase();
    let (qname, mut at) = read_name(answer, HEADER_LEN)?;
    if qname != asked || u16_at(answer, at)? != qtype.code() || u16_at(answer, at + 2)? != CLASS_IN
    {
        return Err(DnsError::Mismatch);
    }
    at += 4;
    let mut owners = vec![asked];
    let mut out = Vec::new();
    for _ in 0..ancount {
        let (owner, next) = read_name(answer, at)?;
        let rtype = u16_at(answer, next)?;
        let class = u16_at(answer, next + 2)?;
        let rdlen = usize::from(u16_at(answer, next + 8)?);
        let rdata_at = next + 10;
        let rdata = answer
            .get(rdata_at..rdata_at + rdlen)
            .ok_or(DnsError::Truncated)?;
        at = rdata_at + rdlen;
        if class != CLASS_IN || !owners.contains(&owner) {
            continue;
        }
        match (rtype, rdata.len()) {
            (TYPE_CNAME, _) if owners.len() <= MAX_CNAMES => {
                let (target, _) = read_name(answer, rdata_at)?;
                if !owners.contains(&target) {
                    owners.push(target);
                }
            }
            (TYPE_A, 4) if qtype == QueryType::A && out.len() < MAX_ADDRESSES => {
                out.push(Address::V4([rdata[0], rdata[1], rdata[2], rdata[3]]));
            }
            (TYPE_AAAA, 16) if qtype == QueryType::Aaaa && out.len() < MAX_ADDRESSES => {
                let mut a = [0u8; 16];
                a.copy_from_slice(rdata);
                out.push(Address::V6(a));
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The id of a DNS message (its first two bytes), to tell a late answer from the awaited one.
pub fn message_id(message: &[u8]) -> Option<u16> {
    u16_at(message, 0).ok()
}

/// Builds an answer to `query` (as [`encode_query`] makes them) with `addresses` (A or AAAA,
/// each as its own record) and `rcode`. The tests' and the CI test's DNS server use it.
pub fn encode_answer(query: &[u8], addresses: &[Address], rcode: u8) -> Option<Vec<u8>> {
    let (_, qend) = read_name(query, HEADER_LEN).ok()?;
    let question = query.get(HEADER_LEN..qend + 4)?;
    let mut a = Vec::with_capacity(64 + addresses.len() * 28);
    a.extend_from_slice(query.get(0..2)?);
    a.extend_from_slice(&[0x81, 0x80 | (rcode & 0xF)]); // QR RD RA
    a.extend_from_slice(&[0, 1]);
    a.extend_from_slice(&(addresses.len() as u16).to_be_bytes());
    a.extend_from_slice(&[0, 0, 0, 0]);
    a.extend_from_slice(question);
    for addr in addresses {
        a.extend_from_slice(&[0xC0, HEADER_LEN as u8]); // the question's name
        let (t, data): (u16, &[u8]) = match addr {
            Address::V4(v) => (TYPE_A, v),
            Address::V6(v) => (TYPE_AAAA, v),
        };
        a.extend_from_slice(&t.to_be_bytes());
        a.extend_from_slice(&CLASS_IN.to_be_bytes());
        a.extend_from_slice(&60u32.to_be_bytes());
        a.extend_from_slice(&(data.len() as u16).to_be_bytes());
        a.extend_from_slice(data);
    }
    Some(a)
}

/// The name and type asked in a query, for the answering side of the tests.
pub fn query_question(query: &[u8]) -> Option<(String, Option<QueryType>)> {
    let (name, at) = read_name(query, HEADER_LEN).ok()?;
    let t = match u16_at(query, at).ok()? {
        TYPE_A => Some(QueryType::A),
        TYPE_AAAA => Some(QueryType::Aaaa),
        _ => None,
    };
    Some((name, t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testutil::{fuzz, mutate};

    #[test]
    fn query_bytes_are_rfc_1035() {
        let q = encode_query(0x1234, "Origin.Test.", QueryType::A).unwrap();
        assert_eq!(
            q,
            b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x06Origin\x04Test\x00\x00\x01\x00\x01"
        );
        assert_eq!(
            query_question(&q),
            Some(("origin.test".into(), Some(QueryType::A)))
        );
        for bad in ["", ".", "a..b", &"x".repeat(64), &"a.".repeat(130)] {
            assert_eq!(
                encode_query(1, bad, QueryType::A),
                Err(DnsError::BadName),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn answers_round_trip_and_follow_cnames() {
        let q = encode_query(7, "origin.test", QueryType::A).unwrap();
        let a = encode_answer(
            &q,
            &[Address::V4([127, 0, 0, 1]), Address::V4([10, 0, 0, 2])],
            0,
        )
        .unwrap();
        assert_eq!(
            parse_answer(&a, 7, "ORIGIN.test.", QueryType::A),
            Ok(vec![
                Address::V4([127, 0, 0, 1]),
                Address::V4([10, 0, 0, 2])
            ])
        );
        assert_eq!(
            parse_answer(&a, 8, "origin.test", QueryType::A),
            Err(DnsError::Mismatch)
        );
        assert_eq!(
            parse_answer(&a, 7, "other.test", QueryType::A),
            Err(DnsError::Mismatch)
        );
        let nx = encode_answer(&q, &[], 3).unwrap();
        assert_eq!(
            parse_answer(&nx, 7, "origin.test", QueryType::A),
            Err(DnsError::Rcode(3))
        );

        // www.test CNAME origin.test (compressed against the question), origin.test A 1.2.3.4,
        // and an A record for an unrelated owner that must be ignored.
        let q = encode_query(9, "www.test", QueryType::A).unwrap();
        let mut a = q.clone();
        a[2] = 0x81;
        a[3] = 0x80;
        a[7] = 3;
        // CNAME: owner ptr 12, rdata "origin" + ptr to "test" (offset 16).
        a.extend_from_slice(&[0xC0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 9]);
        let cname_at = a.len();
        a.extend_from_slice(b"\x06origin\xC0\x10");
        a.extend_from_slice(&[
            0xC0,
            cname_at as u8,
            0,
            1,
            0,
            1,
            0,
            0,
            0,
            60,
            0,
            4,
            1,
            2,
            3,
            4,
        ]);
        a.extend_from_slice(b"\x05other\x00");
        a.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 6, 6, 6, 6]);
        assert_eq!(
            parse_answer(&a, 9, "www.test", QueryType::A),
            Ok(vec![Address::V4([1, 2, 3, 4])])
        );
    }

    #[test]
    fn looping_and_forward_pointers_are_refused() {
        let q = encode_query(1, "a.test", QueryType::A).unwrap();
        let mut a = q.clone();
        a[2] = 0x81;
        a[3] = 0x80;
        a[7] = 1;
        // An answer whose owner points at itself.
        let at = a.len();
        a.extend_from_slice(&[0xC0, at as u8, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 1, 1, 1, 1]);
        assert_eq!(
            parse_answer(&a, 1, "a.test", QueryType::A),
            Err(DnsError::BadAnswerName)
        );
        let mut t = encode_answer(&q, &[Address::V4([1, 1, 1, 1])], 0).unwrap();
        t.truncate(t.len() - 2);
        assert_eq!(
            parse_answer(&t, 1, "a.test", QueryType::A),
            Err(DnsError::Truncated)
        );
    }

    #[test]
    fn hostile_answers_never_panic() {
        let q = encode_query(5, "origin.test", QueryType::Aaaa).unwrap();
        let valid = encode_answer(&q, &[Address::V6([1; 16]), Address::V4([2; 4])], 0).unwrap();
        fuzz("dns answer", 0xD45, 5_000, |rng| {
            let a = if rng.chance(1, 4) {
                rng.bytes(80)
            } else {
                mutate(rng, &valid)
            };
            if let Ok(v) = parse_answer(&a, 5, "origin.test", QueryType::Aaaa) {
                assert!(v.len() <= MAX_ADDRESSES);
                assert!(v.iter().all(|x| matches!(x, Address::V6(_))));
            }
            let _ = query_question(&a);
            let _ = encode_answer(&a, &[Address::V4([1; 4])], 0);
        });
    }
}
