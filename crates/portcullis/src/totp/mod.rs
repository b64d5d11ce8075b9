//! Two-factor sign-in with time-based one-time passwords (RFC 6238), the codes every
//! authenticator app shows, and the recovery codes that stand in for a lost phone.
//!
//! - [`TotpSecret`]: 160 random bits from the operating system, in base32 for people
//!   and apps, sealed at rest with [`Keyring::sealer`](crate::keys::Keyring::sealer)
//!   (purpose [`Purpose::TOTP`](crate::keys::Purpose::TOTP)), never logged.
//! - [`Totp`]: the code of a moment, the check of a code within ±1 step that returns
//!   the step it matched (store it: a step is accepted only once), and the
//!   `otpauth://` URL, as a QR code in SVG with [`qr_svg`].
//! - [`RecoveryCodes`]: ten single-use codes of 120 bits, stored as keyed hashes.
//!
//! RFC 6238 is HMAC-SHA1 over a counter, truncated: written here over RustCrypto's
//! HMAC and SHA-1 (no TOTP crate fits: the maintained one needs a newer compiler than
//! this crate supports, and none returns the step a code matched, which replay
//! refusal needs).
//!
//! ```
//! use portcullis::totp::{Totp, TotpSecret};
//!
//! let secret = TotpSecret::generate();
//! let totp = Totp::default();
//! let now = 1_700_000_000;
//! let code = totp.code_at(&secret, now);
//! // Accepted once: the caller stores the step and passes it back.
//! let step = totp.verify(&secret, &code, now, None).unwrap();
//! assert!(totp.verify(&secret, &code, now, Some(step)).is_err());
//! ```

mod qr;
mod recovery;

use std::fmt;

use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

pub use qr::qr_svg;
pub use recovery::{RecoveryCodes, RECOVERY_CODE_COUNT};

/// A code was refused. Answer every case alike to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TotpError {
    /// Not six digits (spaces aside).
    #[error("a one-time code is six digits")]
    Malformed,
    /// No step within the window has this code.
    #[error("the one-time code is wrong or expired")]
    Wrong,
    /// The code is right but its step was already used.
    #[error("the one-time code was already used")]
    Replayed,
    /// A secret's text is not base32 of the right length.
    #[error("a TOTP secret must be base32 of 128 to 512 bits")]
    BadSecret,
}

/// A TOTP secret: 20 bytes (160 bits, RFC 4226's recommendation) from the OS.
///
/// Its `Debug` shows nothing of it; it is zeroed when dropped.
///
/// ```
/// use portcullis::totp::TotpSecret;
///
/// let secret = TotpSecret::generate();
/// let text = secret.to_base32();
/// assert_eq!(text.len(), 32);
/// assert_eq!(TotpSecret::from_base32(&text).unwrap().to_base32(), text);
/// assert_eq!(format!("{secret:?}"), "TotpSecret(..)");
/// ```
#[derive(Clone)]
pub struct TotpSecret(Zeroizing<Vec<u8>>);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(..)")
    }
}

impl TotpSecret {
    /// A new secret from the operating system's random source.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new(vec![0u8; 20]);
        crate::keys::fill_random(&mut bytes);
        Self(bytes)
    }

    /// A secret from its raw bytes (16 to 64).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TotpError> {
        if !(16..=64).contains(&bytes.len()) {
            return Err(TotpError::BadSecret);
        }
        Ok(Self(Zeroizing::new(bytes.to_vec())))
    }

    /// A secret from base32 (RFC 4648, case and spaces ignored, padding optional).
    pub fn from_base32(text: &str) -> Result<Self, TotpError> {
        let cleaned: Zeroizing<String> = Zeroizing::new(
            text.chars()
                .filter(|c| !c.is_whitespace() && *c != '=')
                .map(|c| c.to_ascii_uppercase())
                .collect(),
        );
        let bytes = data_encoding::BASE32_NOPAD
            .decode(cleaned.as_bytes())
            .map_err(|_| TotpError::BadSecret)?;
        Self::from_bytes(&Zeroizing::new(bytes))
    }

    /// The secret in base32 without padding, as apps take it typed in.
    pub fn to_base32(&self) -> String {
        data_encoding::BASE32_NOPAD.encode(&self.0)
    }

    /// The raw bytes, to seal for storage.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// RFC 6238 parameters: 6 digits, 30-second steps, HMAC-SHA1 (what authenticator apps
/// assume), one step of tolerance either way for clock drift.
///
/// ```
/// use portcullis::totp::{Totp, TotpSecret};
///
/// // RFC 6238, appendix B: the SHA-1 secret, at T = 59 s.
/// let secret = TotpSecret::from_bytes(b"12345678901234567890").unwrap();
/// let totp = Totp::default().digits(8);
/// assert_eq!(totp.code_at(&secret, 59), "94287082");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totp {
    digits: u32,
    step_seconds: u64,
    skew: u64,
}

impl Default for Totp {
    fn default() -> Self {
        Self {
            digits: 6,
            step_seconds: 30,
            skew: 1,
        }
    }
}

impl Totp {
    /// Digits per code (6 to 8).
    pub fn digits(mut self, digits: u32) -> Self {
        self.digits = digits.clamp(6, 8);
        self
    }

    /// The step of `unix_seconds`.
    pub fn step_at(&self, unix_seconds: u64) -> u64 {
        unix_seconds / self.step_seconds
    }

    /// The code of `secret` at `unix_seconds`.
    pub fn code_at(&self, secret: &TotpSecret, unix_seconds: u64) -> String {
        self.code_of_step(secret, self.step_at(unix_seconds))
    }

    fn code_of_step(&self, secret: &TotpSecret, step: u64) -> String {
        // RFC 4226 §5.3: HMAC over the big-endian counter, dynamic truncation.
        let mut mac =
            <Hmac<Sha1> as Mac>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
        mac.update(&step.to_be_bytes());
        let digest = mac.finalize().into_bytes();
        let offset = usize::from(digest[19] & 0x0f);
        let binary = u32::from_be_bytes([
            digest[offset] & 0x7f,
            digest[offset + 1],
            digest[offset + 2],
            digest[offset + 3],
        ]);
        let code = binary % 10u32.pow(self.digits);
        format!("{code:0width$}", width = self.digits as usize)
    }

    /// Checks `code` at `unix_seconds`: the step it matched, within ±1 step, and
    /// later than `last_used` (the step the account last signed in with), so that a
    /// code seen over a shoulder or in a log cannot be used again.
    ///
    /// The caller must store the returned step atomically, refusing when a concurrent
    /// request stored it or a later one first (e.g. `UPDATE … SET totp_step = $1
    /// WHERE id = $2 AND (totp_step IS NULL OR totp_step < $1)`): two requests racing
    /// with one code must not both pass. Codes are compared in constant time.
    pub fn verify(
        &self,
        secret: &TotpSecret,
        code: &str,
        unix_seconds: u64,
        last_used: Option<u64>,
    ) -> Result<u64, TotpError> {
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if code.len() != self.digits as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(TotpError::Malformed);
        }
        let now = self.step_at(unix_seconds);
        let mut matched = None;
        for step in now.saturating_sub(self.skew)..=now + self.skew {
            let expected = self.code_of_step(secret, step);
            if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
                matched = Some(step);
            }
        }
        match matched {
            None => Err(TotpError::Wrong),
            Some(step) if last_used.is_some_and(|used| step <= used) => Err(TotpError::Replayed),
            Some(step) => Ok(step),
        }
    }

    /// The `otpauth://totp/…` URL authenticator apps read from a QR code: `issuer`
    /// (the site's name) and `account` (the username) label the entry.
    ///
    /// ```
    /// use portcullis::totp::{Totp, TotpSecret};
    ///
    /// let secret = TotpSecret::from_base32("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP").unwrap();
    /// let url = Totp::default().otpauth_url(&secret, "Example Site", "alice");
    /// assert_eq!(
    ///     url,
    ///     "otpauth://totp/Example%20Site:alice?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\
    ///      &issuer=Example%20Site&algorithm=SHA1&digits=6&period=30"
    /// );
    /// ```
    pub fn otpauth_url(&self, secret: &TotpSecret, issuer: &str, account: &str) -> String {
        use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
        let issuer = utf8_percent_encode(issuer, NON_ALPHANUMERIC).to_string();
        let account = utf8_percent_encode(account, NON_ALPHANUMERIC).to_string();
        format!(
            "otpauth://totp/{issuer}:{account}?secret={}&issuer={issuer}&algorithm=SHA1&digits={}&period={}",
            secret.to_base32(),
            self.digits,
            self.step_seconds,
        )
    }
}

/// Now, in Unix seconds, for [`Totp::verify`].
pub fn unix_now() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 rows (8 digits).
    #[test]
    fn rfc_6238_vectors() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890").unwrap();
        let totp = Totp::default().digits(8);
        for (time, code) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(totp.code_at(&secret, time), code, "T = {time}");
        }
    }

    #[test]
    fn a_code_is_accepted_within_one_step_and_only_once() {
        let secret = TotpSecret::generate();
        let totp = Totp::default();
        let now = 1_700_000_015;
        let step = totp.step_at(now);
        for (offset, accepted) in [
            (-60i64, false),
            (-30, true),
            (0, true),
            (30, true),
            (60, false),
        ] {
            let at = (now as i64 + offset) as u64;
            let code = totp.code_at(&secret, at);
            let result = totp.verify(&secret, &code, now, None);
            if accepted {
                assert_eq!(result, Ok(totp.step_at(at)), "offset {offset}");
            } else {
                assert!(result.is_err(), "offset {offset}");
            }
        }
        let code = totp.code_at(&secret, now);
        assert_eq!(
            totp.verify(&secret, &code, now, Some(step)),
            Err(TotpError::Replayed)
        );
        // An older step's code after a newer one was used: refused as well.
        let previous = totp.code_at(&secret, now - 30);
        assert_eq!(
            totp.verify(&secret, &previous, now, Some(step)),
            Err(TotpError::Replayed)
        );
        assert_eq!(
            totp.verify(
                &secret,
                &format!("{} {}", &code[..3], &code[3..]),
                now,
                None
            ),
            Ok(step)
        );
    }

    #[test]
    fn malformed_codes_and_secrets_are_refused() {
        let secret = TotpSecret::generate();
        let totp = Totp::default();
        for code in [
            "",
            "12345",
            "1234567",
            "12345a",
            "１２３４５６",
            "-12345",
            "+12345",
        ] {
            assert_eq!(
                totp.verify(&secret, code, 1_700_000_000, None),
                Err(TotpError::Malformed),
                "{code:?}"
            );
        }
        for text in ["", "!!!!", "JBSWY3DP", "0000000000000000000000000000000000"] {
            assert!(TotpSecret::from_base32(text).is_err(), "{text:?}");
        }
        assert!(TotpSecret::from_base32("jbsw y3dp ehpk 3pxp jbsw y3dp ehpk 3pxp").is_ok());
    }
}
