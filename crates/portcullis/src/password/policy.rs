//! Which new passwords to accept, and the normalisation every password goes through.

use std::collections::HashSet;
use std::sync::OnceLock;

use unicode_normalization::UnicodeNormalization;

/// The password in Unicode normalisation form NFKC, as it is hashed and checked.
///
/// NFKC makes the different ways of typing the same text equal: a precomposed `é` and
/// `e` followed by a combining accent, fullwidth and ordinary letters, ligatures and
/// their letters. It is what NIST SP 800-63B recommends for passwords.
///
/// ```
/// use portcullis::password::normalize;
///
/// assert_eq!(normalize("ｐａｓｓｗｏｒｄ"), "password");
/// assert_eq!(normalize("e\u{301}t\u{e9}"), "\u{e9}t\u{e9}");
/// ```
pub fn normalize(password: &str) -> String {
    password.nfkc().collect()
}

// zxcvbn's matching tries dictionary words, keyboard patterns and dates at every
// position and for every length, so its cost grows faster than the length; the first
// 64 characters decide whether a password is guessable (its own limit is 100).
const ZXCVBN_MAX_CHARS: usize = 64;

/// Which new passwords to accept.
///
/// The default follows NIST SP 800-63B and OWASP: 8 to 128 characters (counted after
/// NFKC normalisation), not the username, not in Django's list of the 19,640 most common
/// passwords, and a zxcvbn score of at least 3 of 4 ("safely unguessable"). No rules
/// about character classes: they make passwords harder to remember, not to guess.
///
/// ```
/// use portcullis::password::{PasswordPolicy, PolicyViolation};
///
/// let policy = PasswordPolicy::default();
/// assert_eq!(policy.check("bob", "password123"), Err(PolicyViolation::Common));
/// let to_hash = policy.check("bob", "violet tugboat marmalade ninety").unwrap();
/// assert_eq!(to_hash, "violet tugboat marmalade ninety");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordPolicy {
    min_len: usize,
    max_len: usize,
    min_score: u8,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_len: 8,
            // Long enough for any passphrase, short enough to bound the work.
            max_len: 128,
            min_score: 3,
        }
    }
}

/// Why a new password was refused; the `Display` text is written for the user.
///
/// ```
/// use portcullis::password::PolicyViolation;
///
/// assert_eq!(
///     PolicyViolation::TooShort { min: 8 }.to_string(),
///     "Use at least 8 characters."
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyViolation {
    /// Fewer characters than the minimum.
    #[error("Use at least {min} characters.")]
    TooShort {
        /// The minimum number of characters.
        min: usize,
    },
    /// More characters than the maximum.
    #[error("Use at most {max} characters.")]
    TooLong {
        /// The maximum number of characters.
        max: usize,
    },
    /// The password is the username, ignoring case.
    #[error("The password must not be your username.")]
    SameAsUsername,
    /// The password is in the list of common passwords, ignoring case.
    #[error("This password is one of the most common ones; choose another.")]
    Common,
    /// zxcvbn estimates the password is too easy to guess.
    #[error("This password is too easy to guess.{}", with_space(.suggestion))]
    TooWeak {
        /// zxcvbn's warning and suggestions, when it has any.
        suggestion: Option<String>,
    },
}

fn with_space(suggestion: &Option<String>) -> String {
    suggestion
        .as_deref()
        .map(|text| format!(" {text}"))
        .unwrap_or_default()
}

impl PasswordPolicy {
    /// The fewest characters accepted (default 8).
    ///
    /// ```
    /// use portcullis::password::{PasswordPolicy, PolicyViolation};
    ///
    /// let policy = PasswordPolicy::default().min_len(12);
    /// assert_eq!(
    ///     policy.check("bob", "plum-tart-9"),
    ///     Err(PolicyViolation::TooShort { min: 12 })
    /// );
    /// ```
    pub fn min_len(mut self, min_len: usize) -> Self {
        self.min_len = min_len;
        self
    }

    /// The most characters accepted (default 128).
    ///
    /// ```
    /// use portcullis::password::{PasswordPolicy, PolicyViolation};
    ///
    /// let policy = PasswordPolicy::default().max_len(20);
    /// assert_eq!(
    ///     policy.check("bob", "violet tugboat marmalade ninety"),
    ///     Err(PolicyViolation::TooLong { max: 20 })
    /// );
    /// ```
    pub fn max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self
    }

    /// The lowest zxcvbn score accepted, 0 to 4 (default 3); above 4 counts as 4.
    ///
    /// ```
    /// use portcullis::password::PasswordPolicy;
    ///
    /// let lenient = PasswordPolicy::default().min_score(0);
    /// assert!(lenient.check("bob", "abcdefgh12345").is_ok());
    /// ```
    pub fn min_score(mut self, min_score: u8) -> Self {
        self.min_score = min_score.min(4);
        self
    }

    /// Checks a new password for `username` and returns it NFKC-normalised, ready for
    /// [`Passwords::hash`](super::Passwords::hash).
    ///
    /// The checks run in this order and the first failure is returned: length, equal to
    /// the username (ignoring case), in the common-password list (ignoring case), then
    /// zxcvbn, which is also given the username so that passwords built on it score low.
    ///
    /// ```
    /// use portcullis::password::{PasswordPolicy, PolicyViolation};
    ///
    /// let policy = PasswordPolicy::default();
    /// assert_eq!(
    ///     policy.check("Alice.Liddell", "alice.liddell"),
    ///     Err(PolicyViolation::SameAsUsername)
    /// );
    /// ```
    pub fn check(&self, username: &str, password: &str) -> Result<String, PolicyViolation> {
        // NFKC can make one character many (U+FDFA becomes 18): bound the input before
        // normalising, so the work and memory stay proportional to the limit, not to
        // whatever the request carried. Four bytes is the longest UTF-8 character.
        if password.len() > self.max_len.saturating_mul(4) {
            return Err(PolicyViolation::TooLong { max: self.max_len });
        }
        let normalized = normalize(password);
        let len = normalized.chars().count();
        if len < self.min_len {
            return Err(PolicyViolation::TooShort { min: self.min_len });
        }
        if len > self.max_len {
            return Err(PolicyViolation::TooLong { max: self.max_len });
        }
        let username = normalize(username);
        let lowered = normalized.to_lowercase();
        if !username.is_empty() && lowered == username.to_lowercase() {
            return Err(PolicyViolation::SameAsUsername);
        }
        if common_passwords().contains(lowered.as_str()) {
            return Err(PolicyViolation::Common);
        }
        let head: String = normalized.chars().take(ZXCVBN_MAX_CHARS).collect();
        let user_inputs: &[&str] = if username.is_empty() {
            &[]
        } else {
            &[username.as_str()]
        };
        let entropy = zxcvbn::zxcvbn(&head, user_inputs);
        if u8::from(entropy.score()) < self.min_score {
            return Err(PolicyViolation::TooWeak {
                suggestion: entropy.feedback().and_then(feedback_text),
            });
        }
        Ok(normalized)
    }
}

// zxcvbn's warning, then its suggestions, as one text.
fn feedback_text(feedback: &zxcvbn::feedback::Feedback) -> Option<String> {
    let parts: Vec<String> = feedback
        .warning()
        .map(|warning| warning.to_string())
        .into_iter()
        .chain(feedback.suggestions().iter().map(ToString::to_string))
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

// Django's list (see data/README.md), loaded into a set on first use.
fn common_passwords() -> &'static HashSet<&'static str> {
    static COMMON: OnceLock<HashSet<&'static str>> = OnceLock::new();
    COMMON.get_or_init(|| {
        include_str!("../../data/common-passwords.txt")
            .lines()
            .filter(|line| !line.is_empty())
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::password::hasher::tests::fast;

    #[test]
    fn nfkc_makes_fullwidth_letters_ascii() {
        assert_eq!(normalize("ｐａｓｓｗｏｒｄ１２３"), "password123");
        // So the common-password list catches it too.
        assert_eq!(
            PasswordPolicy::default().check("bob", "ｐａｓｓｗｏｒｄ１２３"),
            Err(PolicyViolation::Common)
        );
        // And a hash of the fullwidth form verifies with the ASCII form.
        let passwords = fast();
        let stored = passwords.hash_blocking("ｆｕｌｌｗｉｄｔｈ").unwrap();
        assert_eq!(passwords.verify_blocking("fullwidth", &stored), Ok(true));
    }

    #[test]
    fn policy_refuses_each_violation() {
        let policy = PasswordPolicy::default();
        assert_eq!(
            policy.check("bob", "short"),
            Err(PolicyViolation::TooShort { min: 8 })
        );
        assert_eq!(
            policy.check("bob", &"x".repeat(129)),
            Err(PolicyViolation::TooLong { max: 128 })
        );
        // 128 characters are fine, counted as characters, not bytes (a repeated
        // pattern is weak, so only the length is checked here).
        let lenient = policy.clone().min_score(0);
        assert!(lenient.check("bob", &"密码🦀é".repeat(32)).is_ok());
        assert_eq!(
            lenient.check("bob", &"密码🦀é".repeat(33)),
            Err(PolicyViolation::TooLong { max: 128 })
        );
        assert_eq!(
            policy.check("bob", "password123"),
            Err(PolicyViolation::Common)
        );
        // U+FDFA is one character of three bytes that NFKC turns into eighteen: the
        // input is bounded by its bytes before it is normalised.
        assert_eq!(
            policy.check("bob", &"\u{FDFA}".repeat(200_000)),
            Err(PolicyViolation::TooLong { max: 128 })
        );
        // Three jamo (nine bytes) compose to one Hangul syllable: 57 syllables typed as
        // jamo are 513 bytes, over 4 × 128, refused before NFKC would shrink them to 57.
        let jamo = "\u{1100}\u{1161}\u{11A8}".repeat(57);
        assert_eq!(normalize(&jamo).chars().count(), 57);
        assert_eq!(
            lenient.check("bob", &jamo),
            Err(PolicyViolation::TooLong { max: 128 })
        );
        assert_eq!(
            policy.check("bob", "PassWord123"),
            Err(PolicyViolation::Common)
        );
        // Length is checked first: "alice" is too short before it is the username.
        assert_eq!(
            policy.check("Alice", "alice"),
            Err(PolicyViolation::TooShort { min: 8 })
        );
        assert_eq!(
            policy.clone().min_len(5).check("Alice", "alice"),
            Err(PolicyViolation::SameAsUsername)
        );
        assert_eq!(
            policy.check("Alice.Liddell", "ALICE.LIDDELL"),
            Err(PolicyViolation::SameAsUsername)
        );
        // In Django's list, so refused as common before zxcvbn sees it.
        assert_eq!(
            policy.check("bob", "qwertyuiop12"),
            Err(PolicyViolation::Common)
        );
        let weak = policy.check("bob", "abcdefgh12345");
        let Err(PolicyViolation::TooWeak { suggestion }) = &weak else {
            panic!("{weak:?}");
        };
        assert!(suggestion.is_some());
        assert!(weak
            .unwrap_err()
            .to_string()
            .starts_with("This password is too easy to guess. "));
        // zxcvbn is told the username: a password built on it scores low.
        assert!(matches!(
            policy.check("zebediah.quarrington", "zebediah.quarrington1"),
            Err(PolicyViolation::TooWeak { .. })
        ));
    }

    #[test]
    fn policy_accepts_a_strong_passphrase_and_returns_it_normalised() {
        let policy = PasswordPolicy::default();
        assert_eq!(
            policy.check("bob", "violet tugboat marmalade ninety"),
            Ok("violet tugboat marmalade ninety".to_owned())
        );
        assert_eq!(
            policy.check("bob", "ｖｉｏｌｅｔ ｔｕｇｂｏａｔ ｍａｒｍａｌａｄｅ"),
            Ok("violet tugboat marmalade".to_owned())
        );
        // A long password is judged on its first 64 characters, quickly.
        let long = "violet tugboat marmalade ninety ".repeat(4);
        assert!(policy.check("bob", long.trim_end()).is_ok());
    }

    #[test]
    fn messages_are_written_for_the_user() {
        assert_eq!(
            PolicyViolation::TooShort { min: 8 }.to_string(),
            "Use at least 8 characters."
        );
        assert_eq!(
            PolicyViolation::TooLong { max: 128 }.to_string(),
            "Use at most 128 characters."
        );
        assert_eq!(
            PolicyViolation::SameAsUsername.to_string(),
            "The password must not be your username."
        );
        assert_eq!(
            PolicyViolation::Common.to_string(),
            "This password is one of the most common ones; choose another."
        );
        assert_eq!(
            PolicyViolation::TooWeak { suggestion: None }.to_string(),
            "This password is too easy to guess."
        );
        assert_eq!(
            PolicyViolation::TooWeak {
                suggestion: Some("Add another word or two.".to_owned())
            }
            .to_string(),
            "This password is too easy to guess. Add another word or two."
        );
    }

    #[test]
    fn the_common_list_is_loaded() {
        let common = common_passwords();
        assert!(common.len() > 19_000);
        assert!(common.contains("123456"));
        assert!(common.iter().all(|p| *p == p.to_lowercase()));
    }
}
