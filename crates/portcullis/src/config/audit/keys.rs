//! The audit of the keys: a secret key is set, and neither it nor a fallback is weak.

use super::Check;
use crate::config::settings::Settings;

impl Settings {
    /// The secret key and its fallbacks.
    pub(super) fn audit_keys(&self, checks: &mut Vec<Check>) {
        checks.push(match &self.secret_key {
            None => Check::fail(
                "secret-key",
                "no secret key is configured",
                "run `portcullis keygen` and set PORTCULLIS_SECRET_KEY (or PORTCULLIS_SECRET_KEY_FILE)",
            ),
            Some(key) => match key.weakness() {
                Some(weakness) => Check::fail(
                    "secret-key",
                    format!("the secret key {weakness}"),
                    "replace it with the output of `portcullis keygen`",
                ),
                None => Check::pass("secret-key", "a strong key is configured"),
            },
        });

        let weak_fallbacks: Vec<String> = self
            .fallback_keys
            .iter()
            .enumerate()
            .filter_map(|(i, key)| match key {
                None => Some(format!("fallback {} is empty", i + 1)),
                Some(key) => key.weakness().map(|w| format!("fallback {} {w}", i + 1)),
            })
            .collect();
        checks.push(if weak_fallbacks.is_empty() {
            Check::pass(
                "secret-key-fallbacks",
                format!("{} fallback key(s), all strong", self.fallback_keys.len()),
            )
        } else {
            Check::fail(
                "secret-key-fallbacks",
                weak_fallbacks.join("; "),
                "remove weak or empty entries from PORTCULLIS_SECRET_KEY_FALLBACKS",
            )
        });
    }
}
