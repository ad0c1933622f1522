//! Positions in the config text: byte offset to line:col, and "where is this key written".
//!
//! serde gives validation code a typed tree without positions, so when a value parses but is
//! wrong (chunk size out of range, remote cluster without origin) we find where the key was
//! written by scanning the text, the way a reader would: track the current `[table]` /
//! `[[array]]` header and match `key = ...` lines (dotted and quoted keys included) against the
//! key's full path. This is good enough for error messages; its limits are documented on
//! [`find_key`].

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

/// Where the key at `path` (e.g. `["vhost", "a.b.c", "hls", "fragment"]`) is written: 1-based
/// (line, col) of the key itself. When the key is not written (its value is a default) the
/// nearest written ancestor is returned (a key or a table header), and (1, 1) when nothing of
/// the path is found.
///
/// Limits: the first match wins, so for `[[array]]` tables the first element's key is found;
/// lines inside multi-line strings and inline tables are not looked into.
pub(crate) fn find_key(text: &str, path: &[&str]) -> (usize, usize) {
    for len in (1..=path.len()).rev() {
        if let Some(pos) = find_exact(text, &path[..len]) {
            return pos;
        }
    }
    (1, 1)
}

fn find_exact(text: &str, target: &[&str]) -> Option<(usize, usize)> {
    let mut table: Vec<String> = Vec::new();
    let mut in_multiline = false;
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        // Skip the inside of multi-line strings: an odd number of `"""`/`'''` toggles.
        let quotes = raw.matches("\"\"\"").count() + raw.matches("'''").count();
        if in_multiline {
            if quotes % 2 == 1 {
                in_multiline = false;
            }
            continue;
        }
        if quotes % 2 == 1 {
            in_multiline = true;
        }
        let trimmed = raw.trim_start();
        let indent = raw.chars().count() - trimmed.chars().count();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix('[') {
            let (inner, offset) = match rest.strip_prefix('[') {
                Some(rest2) => (rest2, 2),
                None => (rest, 1),
            };
            let end = position_outside_quotes(inner, ']').unwrap_or(inner.len());
            table = split_key(&inner[..end]);
            if same(&table, target) {
                let key_indent = inner.chars().count() - inner.trim_start().chars().count();
                return Some((line_no, indent + offset + key_indent + 1));
            }
            continue;
        }
        let Some(eq) = position_outside_quotes(trimmed, '=') else {
            continue;
        };
        let mut full = table.clone();
        full.extend(split_key(&trimmed[..eq]));
        if same(&full, target) {
            return Some((line_no, indent + 1));
        }
    }
    None
}

fn same(have: &[String], want: &[&str]) -> bool {
    have.len() == want.len() && have.iter().zip(want).all(|(a, b)| a == b)
}

/// Byte index of the first `needle` not inside a quoted string.
fn position_outside_quotes(s: &str, needle: char) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match quote {
            Some(q) => {
                if q == '"' && c == '\\' && !escaped {
                    escaped = true;
                    continue;
                }
                if c == q && !escaped {
                    quote = None;
                }
                escaped = false;
            }
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == needle => return Some(i),
            None => {}
        }
    }
    None
}

/// `vhost."a.b" . hls` -> ["vhost", "a.b", "hls"]. Escapes inside quoted keys are kept as
/// written (vhost names have none).
fn split_key(key: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest = key;
    loop {
        let end = position_outside_quotes(rest, '.').unwrap_or(rest.len());
        let part = rest[..end].trim();
        let unquoted = part
            .strip_prefix('"')
            .and_then(|p| p.strip_suffix('"'))
            .or_else(|| part.strip_prefix('\'').and_then(|p| p.strip_suffix('\'')))
            .unwrap_or(part);
        parts.push(unquoted.to_string());
        if end >= rest.len() {
            return parts;
        }
        rest = &rest[end + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_offsets_to_one_based_line_and_char_column() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 6), (2, 1));
        // 'é' is two bytes but one column.
        assert_eq!(line_col(text, 9), (2, 3));
        assert_eq!(line_col(text, 1000), (3, 1));
    }

    #[test]
    fn splits_dotted_and_quoted_keys() {
        assert_eq!(split_key(r#"vhost."a.b" . hls"#), ["vhost", "a.b", "hls"]);
        assert_eq!(split_key("  x "), ["x"]);
        assert_eq!(split_key("'q.r'.s"), ["q.r", "s"]);
    }

    #[test]
    fn finds_keys_under_headers_and_dotted_keys() {
        let text = "\
listen = [\"1935\"]
[vhost.\"a.b\"]
  play.queue_length = 3
[vhost.\"a.b\".hls]
# fragment = 1
fragment = 0
[[vhost.x.transcode]]
";
        assert_eq!(find_key(text, &["listen"]), (1, 1));
        assert_eq!(
            find_key(text, &["vhost", "a.b", "play", "queue_length"]),
            (3, 3)
        );
        assert_eq!(find_key(text, &["vhost", "a.b", "hls", "fragment"]), (6, 1));
        assert_eq!(find_key(text, &["vhost", "a.b", "hls", "window"]), (4, 2));
        assert_eq!(
            find_key(text, &["vhost", "x", "transcode", "engine"]),
            (7, 3)
        );
        assert_eq!(find_key(text, &["nothing"]), (1, 1));
    }
}
