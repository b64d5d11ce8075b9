//! Text input rules: trimmed, NFC-normalised, no control characters, bounded length.
//!
//! Every field a user types goes through one of these before it is stored, so that
//! look-alike spellings compare equal, invisible characters cannot hide in names, and
//! a 10 MB "comment" is a clear 4xx rather than a surprise.
//!
//! ```
//! use portcullis::input::{username, TextRules};
//!
//! assert_eq!(username("  alice_01 ").unwrap(), "alice_01");
//! assert!(username("al").is_err());
//! let comment = TextRules::multiline(1, 2000).apply("  Hello\n world  ").unwrap();
//! assert_eq!(comment, "Hello\n world");
//! ```

use unicode_normalization::UnicodeNormalization;

/// Why a field was refused; the message says how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// Empty after trimming.
    #[error("This field is required.")]
    Empty,
    /// Fewer characters than allowed.
    #[error("Use at least {min} characters.")]
    TooShort {
        /// The minimum.
        min: usize,
    },
    /// More characters than allowed.
    #[error("Use at most {max} characters.")]
    TooLong {
        /// The maximum.
        max: usize,
    },
    /// Control or invisible formatting characters.
    #[error("Control characters are not allowed.")]
    ControlCharacters,
    /// Characters outside the allowed set.
    #[error("Use only letters A–Z, digits, '.', '_' and '-'.")]
    InvalidCharacters,
}

/// Length and character rules for one free-text field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextRules {
    min: usize,
    max: usize,
    multiline: bool,
}

impl TextRules {
    /// One line of `min..=max` characters.
    pub fn single_line(min: usize, max: usize) -> Self {
        Self {
            min,
            max,
            multiline: false,
        }
    }

    /// Text of `min..=max` characters where line breaks and tabs are allowed.
    pub fn multiline(min: usize, max: usize) -> Self {
        Self {
            min,
            max,
            multiline: true,
        }
    }

    /// Trims, normalises to NFC, normalises line breaks to `\n`, and checks.
    pub fn apply(&self, value: &str) -> Result<String, InputError> {
        let text: String = value.trim().nfc().collect();
        let text = if self.multiline {
            text.replace("\r\n", "\n").replace('\r', "\n")
        } else {
            text
        };
        let allowed = |c: char| self.multiline && (c == '\n' || c == '\t');
        // Bidirectional overrides and zero-width characters can disguise text.
        let invisible = |c: char| matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}');
        if text
            .chars()
            .any(|c| (c.is_control() && !allowed(c)) || invisible(c))
        {
            return Err(InputError::ControlCharacters);
        }
        let length = text.chars().count();
        if length == 0 && self.min > 0 {
            return Err(InputError::Empty);
        }
        if length < self.min {
            return Err(InputError::TooShort { min: self.min });
        }
        if length > self.max {
            return Err(InputError::TooLong { max: self.max });
        }
        Ok(text)
    }
}

/// A username: 3–32 characters of `[A-Za-z0-9_.-]` after trimming.
pub fn username(value: &str) -> Result<String, InputError> {
    let name = TextRules::single_line(3, 32).apply(value)?;
    if name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        Ok(name)
    } else {
        Err(InputError::InvalidCharacters)
    }
}

/// The name under which a username is one account: trimmed, NFC-normalised, then
/// lowercased, as [`username`] reads it and without regard to case.
///
/// Two spellings with the same key are the same account: a store keeps usernames
/// unique by this key (the demo's databases by `lower(username)`, its names being
/// ASCII), and the rate limiter counts attempts per key, so that `Alice`, ` alice` and
/// `\u{212A}` (KELVIN SIGN, which NFC makes `K`) cannot buy separate buckets.
///
/// ```
/// use portcullis::input::username_key;
///
/// assert_eq!(username_key(" Alice "), "alice");
/// assert_eq!(username_key("\u{212A}elvin"), username_key("kelvin"));
/// ```
pub fn username_key(value: &str) -> String {
    value.trim().nfc().flat_map(char::to_lowercase).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_the_contract() {
        assert_eq!(username("bob.smith-2_x").unwrap(), "bob.smith-2_x");
        assert_eq!(username("ab"), Err(InputError::TooShort { min: 3 }));
        assert_eq!(
            username(&"a".repeat(33)),
            Err(InputError::TooLong { max: 32 })
        );
        for bad in [
            "' OR '1'='1",
            "al ice",
            "<script>",
            "admin\u{202E}",
            "ålice",
            "a/b",
        ] {
            assert!(username(bad).is_err(), "{bad:?}");
        }
        assert_eq!(username("   "), Err(InputError::Empty));
    }

    #[test]
    fn comments_are_trimmed_normalised_and_bounded() {
        let rules = TextRules::multiline(1, 2000);
        assert_eq!(rules.apply("  e\u{301}  ").unwrap(), "\u{e9}");
        assert_eq!(rules.apply("a\r\nb").unwrap(), "a\nb");
        assert_eq!(rules.apply("   "), Err(InputError::Empty));
        assert_eq!(
            rules.apply(&"x".repeat(2001)),
            Err(InputError::TooLong { max: 2000 })
        );
        assert!(rules.apply(&"é".repeat(2000)).is_ok());
        for bad in [
            "a\u{0}b",
            "bell\u{7}",
            "esc\u{1b}[31m",
            "rtl\u{202E}txt",
            "zw\u{200B}j",
        ] {
            assert_eq!(
                rules.apply(bad),
                Err(InputError::ControlCharacters),
                "{bad:?}"
            );
        }
    }
}
