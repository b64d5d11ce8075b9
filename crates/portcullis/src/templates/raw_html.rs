//! Finds what would write a value unescaped: the `safe` filter and
//! `{% autoescape false %}`.
//!
//! Why by hand: minijinja's parser is not public API, and a value marked safe at
//! render time cannot be told from one a sanitizer made. Reading the tags here is
//! deliberately cruder than the parser: it skips comments, quoted strings and
//! `{% raw %}` blocks, and refuses anything that looks like `| safe` elsewhere, so
//! a false alarm costs a rename, never a hole. The filter itself is also replaced at
//! render time ([`super::Templates`]), in case a form slips past this reading.

/// Where a template writes a value unescaped, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RawHtmlUse {
    pub(super) line: usize,
    pub(super) reason: &'static str,
}

const SAFE_FILTER: &str = "uses the `safe` filter, which writes a value unescaped";
const AUTOESCAPE_OFF: &str = "turns auto-escaping off with `{% autoescape %}`";

/// The first place `source` writes a value unescaped, if any.
pub(super) fn find(source: &str) -> Option<RawHtmlUse> {
    let bytes = source.as_bytes();
    let mut at = 0;
    while let Some(open) = find_from(source, at, "{") {
        let kind = bytes.get(open + 1).copied();
        let close = match kind {
            Some(b'#') => {
                at = find_from(source, open + 2, "#}").map_or(bytes.len(), |end| end + 2);
                continue;
            }
            Some(b'{') => "}}",
            Some(b'%') => "%}",
            _ => {
                at = open + 1;
                continue;
            }
        };
        let end = tag_end(source, open + 2, close);
        let inner = source[open + 2..end].trim_matches(|c: char| c == '-' || c == '+' || c == '~');
        let line = source[..open].matches('\n').count() + 1;
        at = (end + 2).min(bytes.len());
        if kind == Some(b'%') {
            let mut words = inner.split_whitespace();
            match words.next() {
                Some("raw") => {
                    at = raw_end(source, at);
                    continue;
                }
                Some("autoescape") => {
                    let value = words.collect::<Vec<_>>().join(" ");
                    if !matches!(value.as_str(), "true" | "\"html\"" | "'html'") {
                        return Some(RawHtmlUse {
                            line,
                            reason: AUTOESCAPE_OFF,
                        });
                    }
                }
                Some("filter") if filter_chain_has_safe(inner) => {
                    return Some(RawHtmlUse {
                        line,
                        reason: SAFE_FILTER,
                    });
                }
                _ => {}
            }
        }
        if pipes_into_safe(inner) {
            return Some(RawHtmlUse {
                line,
                reason: SAFE_FILTER,
            });
        }
    }
    None
}

fn find_from(source: &str, from: usize, needle: &str) -> Option<usize> {
    source.get(from..)?.find(needle).map(|i| i + from)
}

/// The start of the closing delimiter, skipping quoted strings; the end of the source
/// when the tag is never closed.
fn tag_end(source: &str, from: usize, close: &str) -> usize {
    let bytes = source.as_bytes();
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'"' | b'\'') => i = string_end(bytes, i + 1, quote),
            _ if source[i..].starts_with(close) => return i,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// Just past the closing quote of a string that starts at `from`.
fn string_end(bytes: &[u8], from: usize, quote: u8) -> usize {
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b if b == quote => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// Just past the `{% endraw %}` that closes a raw block.
fn raw_end(source: &str, from: usize) -> usize {
    let mut at = from;
    while let Some(open) = find_from(source, at, "{%") {
        let end = tag_end(source, open + 2, "%}");
        let inner = source[open + 2..end].trim_matches(|c: char| c == '-' || c == '+' || c == '~');
        at = (end + 2).min(source.len());
        if inner.trim() == "endraw" {
            return at;
        }
    }
    source.len()
}

/// Whether an expression pipes into a filter named `safe`, outside strings.
fn pipes_into_safe(expression: &str) -> bool {
    let bytes = expression.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'"' | b'\'') => i = string_end(bytes, i + 1, quote),
            b'|' => {
                let rest = expression[i + 1..].trim_start();
                if first_identifier(rest) == "safe" {
                    return true;
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    false
}

/// `{% filter a|b %}`: whether any filter of the chain is `safe`.
fn filter_chain_has_safe(inner: &str) -> bool {
    let chain = inner.trim_start().trim_start_matches("filter");
    first_identifier(chain.trim_start()) == "safe" || pipes_into_safe(chain)
}

fn first_identifier(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_the_safe_filter_is_found() {
        for source in [
            "{{ body|safe }}",
            "{{ body | safe }}",
            "{{- body|safe -}}",
            "{{ body|upper|safe }}",
            "{{ body|safe() }}",
            "{{ (a ~ b)|safe }}",
            "{% set x = body|safe %}{{ x }}",
            "{% filter safe %}{{ body }}{% endfilter %}",
            "{% filter upper|safe %}{{ body }}{% endfilter %}",
            "{% for c in comments %}{{ c.body|safe }}{% endfor %}",
            "{% if x %}{{ x|\n safe }}{% endif %}",
            "{{ '}}' }}{{ body|safe }}",
            "{{ body|safe",
        ] {
            let found = find(source).unwrap_or_else(|| panic!("missed {source:?}"));
            assert_eq!(found.reason, SAFE_FILTER, "{source}");
        }
    }

    #[test]
    fn turning_autoescape_off_is_found() {
        for source in [
            "{% autoescape false %}{{ x }}{% endautoescape %}",
            "{%- autoescape none -%}{{ x }}{% endautoescape %}",
            "{% autoescape 'json' %}{{ x }}{% endautoescape %}",
            "{% autoescape x %}{{ x }}{% endautoescape %}",
        ] {
            assert_eq!(find(source).unwrap().reason, AUTOESCAPE_OFF, "{source}");
        }
    }

    #[test]
    fn escaping_templates_pass_and_lines_are_reported() {
        for source in [
            "<p>{{ body }}</p>",
            "{{ body|e }}{{ body|escape }}{{ body|safer_name }}{{ 'a|safe' }}",
            "{# {{ body|safe }} #}",
            "{% raw %}{{ body|safe }}{% endraw %}",
            "{% autoescape true %}{{ x }}{% endautoescape %}",
            "{% autoescape 'html' %}{{ x }}{% endautoescape %}",
            "text with | safe outside tags, { and }",
        ] {
            assert_eq!(find(source), None, "{source}");
        }
        assert_eq!(find("a\nb\n{{ x|safe }}").unwrap().line, 3);
    }
}
