//! HTTP Basic authentication for the API (`[http_api.auth]`).

use hyper::{header, Request};

/// Checks `Authorization: Basic base64(user:password)`.
pub fn authorized(req: &Request<hyper::body::Incoming>, user: &str, password: &str) -> bool {
    let Some(v) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(b64) = v
        .strip_prefix("Basic ")
        .or_else(|| v.strip_prefix("basic "))
    else {
        return false;
    };
    base64_decode(b64.trim()).is_some_and(|d| d == format!("{user}:{password}").as_bytes())
}

/// Standard base64 (RFC 4648 §4), padding optional. `None` on any other character.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().take_while(|&c| c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn decodes_base64() {
        assert_eq!(
            super::base64_decode("YWRtaW46c2VjcmV0").unwrap(),
            b"admin:secret"
        );
        assert_eq!(super::base64_decode("YQ==").unwrap(), b"a");
        assert_eq!(super::base64_decode("YWI").unwrap(), b"ab");
        assert!(super::base64_decode("a*b").is_none());
    }
}
