//! Every vector of the XSS corpus (`tests/data/xss_vectors.json`: 500 known XSS and
//! mutation-XSS payloads, each with where it comes from) through the sanitizer: what
//! comes out, parsed again as a browser parses it, holds only the allow-list, and
//! sanitising it again changes nothing. The demo's tests load the same outputs in
//! Chromium.
#![cfg(feature = "sanitize")]

use std::collections::HashSet;

use html5ever::tendril::TendrilSink;
use html5ever::{local_name, ns, QualName};
use markup5ever_rcdom::{Handle, NodeData, RcDom};
use portcullis::sanitize::{SanitizeError, Sanitizer};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Vector {
    id: String,
    kind: String,
    category: String,
    source: String,
    payload: String,
}

fn corpus() -> Vec<Vector> {
    serde_json::from_str(include_str!("data/xss_vectors.json")).unwrap()
}

const ELEMENTS: &[&str] = &[
    "a",
    "b",
    "blockquote",
    "br",
    "code",
    "dd",
    "del",
    "dl",
    "dt",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "ins",
    "kbd",
    "li",
    "ol",
    "p",
    "pre",
    "s",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "ul",
];

/// Every problem with the tree of `html` as a browser builds it (in a `<div>`).
fn violations(html: &str) -> Vec<String> {
    let dom = html5ever::parse_fragment(
        RcDom::default(),
        Default::default(),
        QualName::new(None, ns!(html), local_name!("div")),
        Vec::new(),
        false,
    )
    .one(html);
    let allowed: HashSet<&str> = ELEMENTS.iter().copied().collect();
    let mut found = Vec::new();
    // Below the document, the fragment parser's own `<html>` wrapper.
    let mut pending: Vec<Handle> = dom
        .document
        .children
        .borrow()
        .iter()
        .flat_map(|wrapper| wrapper.children.borrow().clone())
        .collect();
    while let Some(node) = pending.pop() {
        match &node.data {
            NodeData::Element {
                name,
                attrs,
                template_contents,
                ..
            } => {
                let element = name.local.to_string();
                if name.ns != ns!(html) || !allowed.contains(element.as_str()) {
                    found.push(format!("element {:?} {element}", name.ns));
                }
                for attr in attrs.borrow().iter() {
                    let attribute = attr.name.local.to_string();
                    let value = attr.value.to_string();
                    let ok = match (element.as_str(), attribute.as_str()) {
                        ("a", "href") => {
                            let scheme = value.split(':').next().unwrap_or("");
                            value.contains(':') && ["http", "https", "mailto"].contains(&scheme)
                        }
                        ("a", "rel") => value == "nofollow noopener noreferrer ugc",
                        ("a", "title") | ("ol", "start") => true,
                        _ => false,
                    };
                    if !ok {
                        found.push(format!("attribute {element} {attribute}={value:?}"));
                    }
                }
                if let Some(contents) = template_contents.borrow().as_ref() {
                    pending.push(contents.clone());
                }
            }
            NodeData::Comment { .. } => found.push("comment".to_owned()),
            NodeData::ProcessingInstruction { .. } | NodeData::Doctype { .. } => {
                found.push("declaration".to_owned())
            }
            _ => {}
        }
        pending.extend(node.children.borrow().iter().cloned());
    }
    found
}

#[test]
fn the_corpus_is_large_and_says_where_each_vector_comes_from() {
    let corpus = corpus();
    assert!(corpus.len() >= 200, "{}", corpus.len());
    let ids: HashSet<&str> = corpus.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(ids.len(), corpus.len(), "ids are unique");
    for vector in &corpus {
        assert!(!vector.source.trim().is_empty(), "{}", vector.id);
        assert!(!vector.category.trim().is_empty(), "{}", vector.id);
        assert!(
            ["html", "markdown"].contains(&vector.kind.as_str()),
            "{}",
            vector.id
        );
    }
}

#[test]
fn no_vector_leaves_anything_outside_the_allow_list() {
    let sanitizer = Sanitizer::default();
    let mut refused = Vec::new();
    let mut failures = Vec::new();
    for vector in corpus() {
        let result = match vector.kind.as_str() {
            "markdown" => sanitizer.markdown(&vector.payload),
            _ => sanitizer.clean(&vector.payload),
        };
        let html = match result {
            Ok(html) => html,
            // A bounded refusal shows nothing, which is safe.
            Err(
                SanitizeError::TooComplex
                | SanitizeError::Unstable
                | SanitizeError::OutputTooLarge { .. },
            ) => {
                refused.push(vector.id);
                continue;
            }
            Err(e) => panic!("{}: {e}", vector.id),
        };
        for problem in violations(html.as_str()) {
            failures.push(format!(
                "{} ({}): {problem}\n  in {html}",
                vector.id, vector.source
            ));
        }
        let again = sanitizer.clean(html.as_str()).unwrap();
        if again != html {
            failures.push(format!(
                "{}: not stable\n  once  {html}\n  twice {again}",
                vector.id
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!("refused within bounds: {refused:?}");
    assert!(refused.len() <= 5, "refused: {refused:?}");
}

#[test]
fn the_checker_itself_sees_what_it_must_refuse() {
    // The test above is only as good as this reader of trees.
    for (html, problem) in [
        ("<img src=x>", "element"),
        ("<svg></svg>", "element"),
        ("<a href=\"javascript:alert(1)\">x</a>", "attribute"),
        ("<a href=\"/x\">x</a>", "attribute"),
        ("<a rel=opener href=https://a.example>x</a>", "attribute"),
        ("<p onclick=x>p</p>", "attribute"),
        ("<p id=cookie>p</p>", "attribute"),
        ("<!-- c -->", "comment"),
        ("<template><script>x</script></template>", "element"),
    ] {
        let found = violations(html);
        assert!(
            found.iter().any(|f| f.starts_with(problem)),
            "{html}: {found:?}"
        );
    }
    assert!(violations(
        "<p><a href=\"https://a.example\" rel=\"nofollow noopener noreferrer ugc\">x</a></p>"
    )
    .is_empty());
}
