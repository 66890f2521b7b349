//! Keeping secrets out of logs, streams and error messages.
//!
//! A [`Redactor`] knows a set of secret values and every form they commonly take in output:
//! the value itself, each line of a multi-line value (a PEM key), its base64 encoding at each
//! of the three byte alignments it can have inside a longer encoded text (standard and
//! URL-safe alphabets), its URL-encoded form and its JSON-escaped form. All of them are
//! replaced by [`REDACTED`]. Independently of known values, the password of any
//! `scheme://user:password@host` URL is replaced too.
//!
//! Values shorter than [`MIN_SECRET_LEN`] are not treated as secrets: redacting every `true`,
//! `8080` or `admin` in a log would destroy it while protecting nothing.
//!
//! Output arrives in arbitrary chunks; [`LineRedactor`] reassembles lines before redacting, so
//! a secret split across chunks is still found.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// What replaces a secret.
pub const REDACTED: &str = "[REDACTED]";

/// Shorter values are not secrets (see the module documentation).
pub const MIN_SECRET_LEN: usize = 6;

/// What URL encoding leaves alone (RFC 3986 unreserved characters).
const URL_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

#[derive(Clone, Default)]
pub struct Redactor {
    /// The values as given, to make a redactor that knows one more.
    secrets: std::sync::Arc<[String]>,
    matcher: Option<AhoCorasick>,
    longest: usize,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field(
                "patterns",
                &self.matcher.as_ref().map_or(0, |m| m.patterns_len()),
            )
            .finish()
    }
}

impl Redactor {
    /// A redactor for `secrets` (values shorter than [`MIN_SECRET_LEN`] are ignored).
    pub fn new<I, S>(secrets: I) -> Redactor
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let secrets: std::sync::Arc<[String]> = secrets
            .into_iter()
            .map(|secret| secret.as_ref().to_owned())
            .collect();
        let mut patterns: Vec<String> = secrets
            .iter()
            .flat_map(|secret| forms(secret))
            .filter(|form| form.len() >= MIN_SECRET_LEN)
            .collect();
        patterns.sort();
        patterns.dedup();
        let longest = patterns.iter().map(String::len).max().unwrap_or(0);
        let matcher = (!patterns.is_empty())
            .then(|| {
                AhoCorasickBuilder::new()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(&patterns)
                    .ok()
            })
            .flatten();
        Redactor {
            secrets,
            matcher,
            longest,
        }
    }

    /// This redactor, also knowing `secret`: for a secret that comes into being while its
    /// output is being written (a credential renewed half-way).
    pub fn with(&self, secret: &str) -> Redactor {
        Redactor::new(self.secrets.iter().map(String::as_str).chain([secret]))
    }

    /// Length in bytes of the longest form searched for.
    pub fn longest(&self) -> usize {
        self.longest
    }

    /// `text` with every known secret form and every URL password replaced.
    pub fn redact(&self, text: &str) -> String {
        let known = match &self.matcher {
            Some(matcher) => matcher.replace_all(text, &vec![REDACTED; matcher.patterns_len()]),
            None => text.to_owned(),
        };
        redact_url_passwords(&known)
    }
}

/// Every form of `secret` worth searching for.
fn forms(secret: &str) -> Vec<String> {
    let mut forms = vec![secret.to_owned()];
    if secret.contains('\n') {
        forms.extend(
            secret
                .lines()
                .map(|line| line.trim_end_matches('\r').to_owned()),
        );
    }
    for engine in [STANDARD_NO_PAD, URL_SAFE_NO_PAD] {
        for offset in 0..3 {
            forms.push(base64_core(&engine, secret.as_bytes(), offset));
        }
    }
    let encoded = utf8_percent_encode(secret, URL_UNRESERVED).to_string();
    forms.push(encoded.replace("%20", "+"));
    forms.push(encoded);
    if let Ok(json) = serde_json::to_string(secret) {
        forms.push(json.trim_matches('"').to_owned());
    }
    forms
}

/// The part of the base64 encoding of `secret` that does not depend on its surroundings when
/// it sits `offset` bytes after a 3-byte boundary of a longer encoded text.
fn base64_core(engine: &impl Engine, secret: &[u8], offset: usize) -> String {
    let mut data = vec![0u8; offset];
    data.extend_from_slice(secret);
    let encoded = engine.encode(&data);
    // Characters carry 6 bits; keep those made only of the secret's bits.
    let start = (offset * 8).div_ceil(6);
    let end = (data.len() * 8) / 6;
    encoded.get(start..end).unwrap_or_default().to_owned()
}

/// Replaces the password of `scheme://user:password@host` URLs.
fn redact_url_passwords(text: &str) -> String {
    if !text.contains("://") {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        let authority_end = after
            .find(|c: char| c == '/' || c.is_whitespace() || c == '"' || c == '\'' || c == '>')
            .unwrap_or(after.len());
        let authority = &after[..authority_end];
        match authority
            .rfind('@')
            .and_then(|at| authority[..at].find(':').map(|colon| (colon, at)))
        {
            Some((colon, at)) if at > colon + 1 => {
                out.push_str(&authority[..=colon]);
                out.push_str(REDACTED);
                out.push_str(&authority[at..]);
            }
            _ => out.push_str(authority),
        }
        rest = &after[authority_end..];
    }
    out.push_str(rest);
    out
}

/// Redacts output that arrives in chunks, one line at a time: a line is only redacted once it
/// is complete, so a secret split across chunks is found whole. A line longer than
/// `max_line` is cut, keeping enough of its end for a secret spanning the cut.
pub struct LineRedactor {
    redactor: Redactor,
    pending: Vec<u8>,
    max_line: usize,
}

impl LineRedactor {
    pub const DEFAULT_MAX_LINE: usize = 64 * 1024;

    pub fn new(redactor: Redactor) -> LineRedactor {
        LineRedactor::with_max_line(redactor, Self::DEFAULT_MAX_LINE)
    }

    pub fn with_max_line(redactor: Redactor, max_line: usize) -> LineRedactor {
        let max_line = max_line.max(redactor.longest() * 2 + 1);
        LineRedactor {
            redactor,
            pending: Vec::new(),
            max_line,
        }
    }

    /// Feeds a chunk; returns the lines it completed, redacted, without their newline.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        for &byte in chunk {
            if byte == b'\n' {
                lines.push(self.take_line(self.pending.len()));
                continue;
            }
            self.pending.push(byte);
            if self.pending.len() >= self.max_line {
                lines.push(self.cut_long_line());
            }
        }
        lines
    }

    /// The unfinished last line, if any, redacted.
    pub fn finish(&mut self) -> Option<String> {
        (!self.pending.is_empty()).then(|| self.take_line(self.pending.len()))
    }

    fn take_line(&mut self, upto: usize) -> String {
        let line: Vec<u8> = self.pending.drain(..upto).collect();
        let text = String::from_utf8_lossy(&line);
        self.redactor.redact(text.trim_end_matches('\r'))
    }

    /// Emits the start of an over-long line, keeping its last `longest - 1` bytes (and any
    /// secret that starts before the cut) for the next piece.
    fn cut_long_line(&mut self) -> String {
        let mut cut = self.pending.len() - self.redactor.longest().saturating_sub(1);
        if let Some(matcher) = &self.redactor.matcher {
            for found in matcher.find_iter(&self.pending) {
                if found.start() < cut && found.end() > cut {
                    cut = found.end();
                }
            }
        }
        // Never cut inside a UTF-8 sequence.
        while cut < self.pending.len() && (self.pending[cut] & 0b1100_0000) == 0b1000_0000 {
            cut += 1;
        }
        self.take_line(cut)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SECRET: &str = "s3cr3t-Value/with+symbols&more";

    fn redactor() -> Redactor {
        Redactor::new([SECRET])
    }

    #[test]
    fn every_form_is_redacted() {
        let r = redactor();
        let base64_in_text =
            |prefix: &str| STANDARD_NO_PAD.encode(format!("{prefix}{SECRET} and more").as_bytes());
        let samples = [
            format!("token={SECRET}"),
            base64_in_text(""),
            base64_in_text("a"),
            base64_in_text("ab"),
            URL_SAFE_NO_PAD.encode(format!("xy{SECRET}").as_bytes()),
            format!(
                "GET /login?p={}",
                utf8_percent_encode(SECRET, URL_UNRESERVED)
            ),
            format!(
                "{{\"password\": {}}}",
                serde_json::to_string(SECRET).unwrap()
            ),
        ];
        for sample in samples {
            let redacted = r.redact(&sample);
            assert!(redacted.contains(REDACTED), "{sample} -> {redacted}");
            assert!(!redacted.contains(SECRET), "{redacted}");
        }
    }

    #[test]
    fn multi_line_secrets_are_redacted_line_by_line() {
        let pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----";
        let r = Redactor::new([pem]);
        for line in pem.lines() {
            assert_eq!(r.redact(&format!("> {line}")), format!("> {REDACTED}"));
        }
    }

    #[test]
    fn a_secret_added_later_is_redacted_with_the_earlier_ones() {
        let renewed = "ghs_renewed-token-value";
        let r = redactor().with(renewed);
        let basic = STANDARD_NO_PAD.encode(format!("x-access-token:{renewed}"));
        for sample in [format!("{SECRET} {renewed}"), basic] {
            let redacted = r.redact(&sample);
            assert!(
                !redacted.contains(SECRET) && !redacted.contains(renewed),
                "{redacted}"
            );
            assert!(redacted.contains(REDACTED), "{redacted}");
        }
        assert_eq!(redactor().redact(renewed), renewed);
    }

    #[test]
    fn short_values_are_not_secrets() {
        let r = Redactor::new(["abc12", "true"]);
        assert_eq!(r.redact("abc12 true"), "abc12 true");
    }

    #[test]
    fn url_passwords_are_redacted_even_when_unknown() {
        let r = Redactor::default();
        assert_eq!(
            r.redact("cloning https://bob:hunter22@github.com/a/b.git now"),
            format!("cloning https://bob:{REDACTED}@github.com/a/b.git now")
        );
        assert_eq!(
            r.redact("postgres://app@db/x and http://h/p"),
            "postgres://app@db/x and http://h/p"
        );
    }

    #[test]
    fn long_lines_are_cut_without_splitting_a_secret() {
        let mut lines = LineRedactor::with_max_line(redactor(), 64);
        let text = format!("{}{SECRET}{}", "x".repeat(50), "y".repeat(100));
        let mut out = lines.push(text.as_bytes());
        out.extend(lines.finish());
        let joined = out.concat();
        assert!(!joined.contains(SECRET), "{joined}");
        assert!(joined.contains(REDACTED));
    }

    proptest! {
        #[test]
        fn chunking_never_lets_a_secret_through(
            pieces in proptest::collection::vec("[a-zA-Z0-9 =:/\n]{0,40}", 1..20),
            cuts in proptest::collection::vec(1usize..17, 1..60),
            secret_at in proptest::collection::vec(any::<bool>(), 1..20),
        ) {
            let secrets = [SECRET, "another-SECRET-value", "line-one-xyz\nline-two-xyz"];
            let r = Redactor::new(secrets);
            let mut text = String::new();
            for (i, piece) in pieces.iter().enumerate() {
                text.push_str(piece);
                if secret_at.get(i).copied().unwrap_or(false) {
                    text.push_str(secrets[i % secrets.len()]);
                }
            }
            let mut lines = LineRedactor::new(r.clone());
            let mut out = vec![];
            let bytes = text.as_bytes();
            let (mut at, mut i) = (0, 0);
            while at < bytes.len() {
                let size = cuts[i % cuts.len()].min(bytes.len() - at);
                out.extend(lines.push(&bytes[at..at + size]));
                at += size;
                i += 1;
            }
            out.extend(lines.finish());
            let whole: Vec<String> = text.split('\n').map(|line| r.redact(line)).collect();
            // No bytes make no line, as `split` would have it make one empty line.
            let expected: Vec<String> = if text.is_empty() {
                vec![]
            } else if text.ends_with('\n') {
                whole[..whole.len() - 1].to_vec()
            } else {
                whole
            };
            prop_assert_eq!(&out, &expected);
            for line in &out {
                for secret in secrets {
                    for part in secret.lines() {
                        prop_assert!(!line.contains(part), "{} leaked in {}", part, line);
                    }
                }
            }
        }
    }
}
