//! Escaping, the nonce, and the refusal of raw HTML.
use super::*;

const PAYLOAD: &str = "<script>alert(1)</script>\"'><img src=x onerror=alert(1)>";

#[test]
fn templates_without_html_extension_still_escape() {
    let templates = Templates::from_sources([
        ("comment.txt", "{{ body }}"),
        ("noextension", "{{ body }}"),
        ("page.jinja", "<a title=\"{{ body }}\">x</a>"),
    ])
    .unwrap();
    let nonce = CspNonce::generate();
    for name in ["comment.txt", "noextension", "page.jinja"] {
        let out = templates
            .render_string(
                name,
                &Page::new(nonce),
                minijinja::context! { body => PAYLOAD },
            )
            .unwrap();
        assert!(!out.contains("<script>"), "{name}: {out}");
        assert!(!out.contains("<img"), "{name}: {out}");
        assert!(!out.contains("\"'>"), "{name}: {out}");
        assert!(out.contains("&lt;script&gt;"), "{name}: {out}");
    }
}

#[test]
fn templates_from_a_folder_escape_and_get_the_nonce() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("plain.txt"), "{{ body }}|{{ csp_nonce() }}").unwrap();
    let templates = Templates::from_dir(dir.path());
    let nonce = CspNonce::generate();
    let out = templates
        .render_string(
            "plain.txt",
            &Page::new(nonce),
            minijinja::context! { body => PAYLOAD },
        )
        .unwrap();
    assert!(!out.contains("<script>"));
    assert!(out.ends_with(nonce.as_str()));
}

#[test]
fn context_cannot_forge_the_nonce() {
    let templates = Templates::from_sources([("t", "{{ csp_nonce() }}")]).unwrap();
    let nonce = CspNonce::generate();
    let out = templates
        .render_string(
            "t",
            &Page::new(nonce),
            minijinja::context! { __portcullis_csp_nonce => "forged" },
        )
        .unwrap();
    assert_eq!(out, nonce.as_str());
}

#[test]
fn render_errors_do_not_leak_template_source() {
    let templates = Templates::from_sources([("t", "{{ missing.deeply }}")]).unwrap();
    let err = templates
        .render_string("t", &Page::new(CspNonce::generate()), ())
        .unwrap_err();
    assert_eq!(err.status(), 500);
    assert!(!err.message().contains("missing"));
    let err = templates
        .render_string("absent", &Page::new(CspNonce::generate()), ())
        .unwrap_err();
    assert_eq!(err.status(), 500);
}

#[test]
fn templates_that_write_raw_html_are_refused_when_loaded() {
    let refused = Templates::from_sources([("page.html", "<p>\n{{ body|safe }}</p>")]).unwrap_err();
    assert!(
        matches!(&refused, TemplateError::RawHtml { name, line: 2, .. } if name == "page.html"),
        "{refused}"
    );
    assert!(refused.to_string().contains("SafeHtml"), "{refused}");
    assert!(matches!(
        Templates::from_sources([("p", "{% autoescape false %}{{ b }}{% endautoescape %}")]),
        Err(TemplateError::RawHtml { .. })
    ));

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("parts")).unwrap();
    std::fs::write(dir.path().join("ok.html"), "{{ body }}").unwrap();
    std::fs::write(dir.path().join("parts/raw.html"), "{{ body|safe }}").unwrap();
    let refused = Templates::builder().dir(dir.path()).build().unwrap_err();
    assert!(
        matches!(&refused, TemplateError::RawHtml { name, .. } if name == "parts/raw.html"),
        "{refused}"
    );
    // Loaded lazily, the same template fails to render and never writes the body.
    let lazy = Templates::from_dir(dir.path());
    let nonce = CspNonce::generate();
    let page = Page::new(nonce);
    assert!(lazy
        .render_string(
            "parts/raw.html",
            &page,
            minijinja::context! { body => PAYLOAD }
        )
        .is_err());
    assert!(lazy
        .render_string("ok.html", &page, minijinja::context! { body => PAYLOAD })
        .unwrap()
        .starts_with("&lt;script&gt;"));
}

#[test]
fn a_trusted_template_may_mark_values_safe_and_others_may_not() {
    let templates = Templates::builder()
        .source("banner.html", "{{ banner|safe }}")
        .dangerous_trust_raw_html("banner.html")
        .build()
        .unwrap();
    let out = templates
        .render_string(
            "banner.html",
            &Page::new(CspNonce::generate()),
            minijinja::context! { banner => "<b>ops</b>" },
        )
        .unwrap();
    assert_eq!(out, "<b>ops</b>");
}

#[cfg(feature = "sanitize")]
#[test]
fn sanitized_html_renders_as_it_is_and_plain_strings_are_escaped() {
    let templates = Templates::from_sources([("c.html", "{{ html }}|{{ text }}|{{ html|safe }}")]);
    // `|safe` is refused even where it would be harmless: the check is by name.
    assert!(templates.is_err());
    let templates = Templates::from_sources([("c.html", "{{ html }}|{{ text }}")]).unwrap();
    let html = crate::sanitize::Sanitizer::default()
        .markdown("*hi* <img src=x onerror=alert(1)>")
        .unwrap();
    let out = templates
        .render_string(
            "c.html",
            &Page::new(CspNonce::generate()),
            minijinja::context! { html => html, text => "<em>hi</em>" },
        )
        .unwrap();
    assert_eq!(out, "<p><em>hi</em> </p>\n|&lt;em&gt;hi&lt;&#x2f;em&gt;");
}
