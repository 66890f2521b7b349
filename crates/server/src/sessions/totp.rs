//! Time-based one-time passwords (RFC 6238) as every authenticator app computes them: HMAC-SHA-1,
//! 6 digits, 30-second steps, with 160-bit secrets shown in base32. A code is accepted for the
//! step before and after the current one too (a clock off by up to 30 s); that each step is
//! accepted once is the store's rule (`Store::accept_totp_step`). Time is passed in, so all of
//! this is pure.

use data_encoding::BASE32_NOPAD;
use hmac::{Hmac, KeyInit, Mac};
use jiff::Timestamp;
use sha1::Sha1;
use subtle::ConstantTimeEq;

/// Seconds per step.
pub const STEP_SECONDS: i64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;
/// Steps accepted either side of the current one.
pub const SKEW_STEPS: i64 = 1;
/// Secret length in bytes: RFC 4226's recommended 160 bits.
const SECRET_BYTES: usize = 20;

/// A fresh random secret.
pub fn new_secret() -> Vec<u8> {
    let secret: [u8; SECRET_BYTES] = rand::random();
    secret.to_vec()
}

/// The secret as authenticator apps take it (base32, no padding).
pub fn encode(secret: &[u8]) -> String {
    BASE32_NOPAD.encode(secret)
}

/// The secret back from [`encode`]'s form; `None` when it is not base32.
pub fn decode(encoded: &str) -> Option<Vec<u8>> {
    BASE32_NOPAD.decode(encoded.as_bytes()).ok()
}

/// The `otpauth://` URI a QR code carries, labelled "issuer:account".
pub fn provisioning_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let escape = |text: &str| {
        url::form_urlencoded::byte_serialize(text.as_bytes())
            .collect::<String>()
            .replace('+', "%20")
    };
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        escape(issuer),
        escape(account),
        encode(secret),
        escape(issuer),
    )
}

/// The step `now` falls in.
pub fn step_at(now: Timestamp) -> i64 {
    now.as_second().div_euclid(STEP_SECONDS)
}

/// The code of `step` (RFC 4226's HOTP with the step as counter), zero-padded.
pub fn code(secret: &[u8], step: i64) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[digest.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    format!(
        "{:0width$}",
        binary % 10u32.pow(DIGITS),
        width = DIGITS as usize
    )
}

/// The step whose code `typed` is, looking one step either side of `now`'s; spaces are
/// ignored ("123 456"). Every candidate is compared in constant time.
pub fn matching_step(secret: &[u8], typed: &str, now: Timestamp) -> Option<i64> {
    let typed: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    let current = step_at(now);
    let mut found = None;
    for step in current - SKEW_STEPS..=current + SKEW_STEPS {
        if bool::from(code(secret, step).as_bytes().ct_eq(typed.as_bytes())) {
            found = Some(step);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn codes_match_the_rfc_6238_sha1_vectors() {
        // RFC 6238 appendix B gives 8 digits; a 6-digit code is their last six.
        for (seconds, eight) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
        ] {
            let step = step_at(Timestamp::from_second(seconds).unwrap());
            assert_eq!(code(RFC_SECRET, step), eight[2..], "at {seconds}");
        }
    }

    #[test]
    fn a_code_matches_its_step_and_one_either_side_only() {
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let step = step_at(now);
        for offset in -1..=1 {
            let typed = code(RFC_SECRET, step + offset);
            assert_eq!(matching_step(RFC_SECRET, &typed, now), Some(step + offset));
        }
        assert_eq!(
            matching_step(RFC_SECRET, &code(RFC_SECRET, step + 2), now),
            None
        );
        assert_eq!(matching_step(RFC_SECRET, "12345", now), None);
        let spaced = code(RFC_SECRET, step);
        let spaced = format!("{} {}", &spaced[..3], &spaced[3..]);
        assert_eq!(matching_step(RFC_SECRET, &spaced, now), Some(step));
    }

    #[test]
    fn secrets_round_trip_through_base32_and_the_uri() {
        let secret = new_secret();
        assert_eq!(secret.len(), 20);
        assert_eq!(decode(&encode(&secret)), Some(secret.clone()));
        let uri = provisioning_uri("Helvetia", "ada@example.com", &secret);
        assert!(
            uri.starts_with("otpauth://totp/Helvetia:ada%40example.com?secret="),
            "{uri}"
        );
        assert!(uri.contains(&encode(&secret)), "{uri}");
    }
}
