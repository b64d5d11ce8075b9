//! What the audit reads from a page, parsed as a browser parses it (html5ever, the
//! parser of Servo and of the library's sanitizer), never with patterns.

use std::rc::Rc;

use html5ever::tendril::TendrilSink as _;
use markup5ever_rcdom::{Handle, NodeData, RcDom};

/// A `<script>` element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Script {
    pub(crate) src: Option<String>,
    pub(crate) integrity: Option<String>,
}

/// A `<form>` element and the names of its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Form {
    /// Lower case; `get` when absent, as browsers default.
    pub(crate) method: String,
    pub(crate) action: Option<String>,
    /// `name` of every `input` (hidden or not), `textarea`, `select` and `button`.
    pub(crate) field_names: Vec<String>,
}

/// A URL the page loads or sends to: `(element, attribute, url)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reference {
    pub(crate) element: String,
    pub(crate) url: String,
    /// Scripts, styles, frames, objects and form targets; images and media are passive.
    pub(crate) active: bool,
}

/// The parts of a page the checks look at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Page {
    pub(crate) scripts: Vec<Script>,
    pub(crate) forms: Vec<Form>,
    /// `<meta http-equiv="content-security-policy" content>` values.
    pub(crate) meta_csp: Vec<String>,
    /// `<meta name="referrer" content>`, the last one.
    pub(crate) meta_referrer: Option<String>,
    pub(crate) references: Vec<Reference>,
}

/// Parses `html` (lossy UTF-8) and collects what the checks need.
pub(crate) fn parse(html: &[u8]) -> Page {
    let text = String::from_utf8_lossy(html);
    let dom = html5ever::parse_document(RcDom::default(), Default::default()).one(text.as_ref());
    let mut page = Page::default();
    // Depth-first without recursion: a page nested thousands deep costs no stack.
    let mut stack: Vec<(Handle, Option<usize>)> = vec![(dom.document.clone(), None)];
    while let Some((node, form)) = stack.pop() {
        let mut inside = form;
        if let NodeData::Element { name, attrs, .. } = &node.data {
            let tag = (*name.local).to_ascii_lowercase();
            let attrs = attrs.borrow();
            let attr = |wanted: &str| -> Option<String> {
                attrs
                    .iter()
                    .find(|a| (*a.name.local).eq_ignore_ascii_case(wanted))
                    .map(|a| a.value.to_string())
            };
            match tag.as_str() {
                "script" => {
                    let src = attr("src");
                    if let Some(url) = &src {
                        page.references.push(reference(&tag, url, true));
                    }
                    page.scripts.push(Script {
                        src,
                        integrity: attr("integrity").filter(|v| !v.trim().is_empty()),
                    });
                }
                "form" => {
                    let action = attr("action");
                    if let Some(url) = &action {
                        page.references.push(reference(&tag, url, true));
                    }
                    page.forms.push(Form {
                        method: attr("method")
                            .map(|m| m.trim().to_ascii_lowercase())
                            .unwrap_or_else(|| "get".into()),
                        action,
                        field_names: Vec::new(),
                    });
                    inside = Some(page.forms.len() - 1);
                }
                "input" | "textarea" | "select" | "button" => {
                    if let (Some(index), Some(name)) = (form, attr("name")) {
                        page.forms[index].field_names.push(name);
                    }
                }
                "meta" => {
                    let equiv = attr("http-equiv").map(|v| v.trim().to_ascii_lowercase());
                    let content = attr("content");
                    if equiv.as_deref() == Some("content-security-policy") {
                        page.meta_csp.extend(content);
                    } else if attr("name")
                        .is_some_and(|n| n.trim().eq_ignore_ascii_case("referrer"))
                    {
                        page.meta_referrer = content.or(page.meta_referrer.take());
                    }
                }
                "link" => {
                    let rel = attr("rel").unwrap_or_default().to_ascii_lowercase();
                    if let Some(url) = attr("href") {
                        let active = rel.contains("stylesheet")
                            || rel.contains("preload")
                            || rel.contains("modulepreload")
                            || rel.contains("manifest");
                        let passive = rel.contains("icon");
                        if active || passive {
                            page.references.push(reference(&tag, &url, active));
                        }
                    }
                }
                "iframe" | "frame" | "embed" => {
                    if let Some(url) = attr("src") {
                        page.references.push(reference(&tag, &url, true));
                    }
                }
                "object" => {
                    if let Some(url) = attr("data") {
                        page.references.push(reference(&tag, &url, true));
                    }
                }
                "img" | "audio" | "video" | "source" | "track" => {
                    if let Some(url) = attr("src") {
                        page.references.push(reference(&tag, &url, false));
                    }
                    if let Some(set) = attr("srcset") {
                        for candidate in set.split(',') {
                            if let Some(url) = candidate.split_whitespace().next() {
                                page.references.push(reference(&tag, url, false));
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        // Children in reverse, so that they pop in document order.
        for child in node.children.borrow().iter().rev() {
            stack.push((Rc::clone(child), inside));
        }
        // Template contents hold a fragment of their own.
        if let NodeData::Element {
            template_contents, ..
        } = &node.data
        {
            if let Some(contents) = template_contents.borrow().as_ref() {
                stack.push((Rc::clone(contents), inside));
            }
        }
    }
    page
}

fn reference(element: &str, url: &str, active: bool) -> Reference {
    Reference {
        element: element.to_owned(),
        url: url.trim().to_owned(),
        active,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_forms_metas_and_references_are_read_as_a_browser_reads_them() {
        let page = parse(
            br#"<!doctype html><html><head>
            <meta http-equiv="Content-Security-Policy" content="default-src 'none'">
            <meta name=referrer content=no-referrer>
            <script src="/a.js" integrity="sha384-x"></script>
            <script>inline()</script>
            <!-- <script src="http://commented.example/x.js"></script> -->
            </head><body>
            <form method=POST action="/post"><input type=hidden name=csrf_token value=1>
              <textarea name=body></textarea></form>
            <form action="http://plain.example/search"><input name=q></form>
            <img src="http://plain.example/i.png" srcset="https://a.example/1.png 1x, http://b.example/2.png 2x">
            <script>var s = "<script src='http://in-a-string.example/'>";</script>
            </body></html>"#,
        );
        assert_eq!(page.scripts.len(), 3);
        assert_eq!(page.scripts[0].src.as_deref(), Some("/a.js"));
        assert_eq!(page.scripts[0].integrity.as_deref(), Some("sha384-x"));
        assert_eq!(page.meta_csp, vec!["default-src 'none'".to_owned()]);
        assert_eq!(page.meta_referrer.as_deref(), Some("no-referrer"));
        assert_eq!(page.forms.len(), 2);
        assert_eq!(page.forms[0].method, "post");
        assert_eq!(page.forms[0].field_names, vec!["csrf_token", "body"]);
        assert_eq!(page.forms[1].method, "get");
        let urls: Vec<&str> = page.references.iter().map(|r| r.url.as_str()).collect();
        assert!(urls.contains(&"http://plain.example/i.png"));
        assert!(urls.contains(&"http://b.example/2.png"));
        // Comments and script text are not markup.
        assert!(!urls.iter().any(|u| u.contains("commented")));
        assert!(!urls.iter().any(|u| u.contains("in-a-string")));
    }
}
