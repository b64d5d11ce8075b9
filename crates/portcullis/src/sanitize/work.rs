//! A work meter for HTML parsing: the same html5ever tree builder ammonia runs, fed a
//! sink that only counts, stopped as soon as the count passes a budget linear in the
//! input.
//!
//! Why by hand: html5ever follows the HTML5 tree-building algorithm, whose scope
//! checks scan the stack of open elements and whose formatting elements are
//! re-created for every new block. Deep nesting therefore costs input × depth: 64 KiB
//! of `<div>` took 0.56 s and 64 KiB of Markdown `>` (16,000 nested quotes) minutes.
//! No sanitizer crate bounds this, and a depth count of our own would have to mirror
//! every scope and raw-text rule to be trusted. The tree builder calls its sink for
//! every element it looks at or makes, so counting those calls measures its work
//! exactly, whatever the markup does.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

use html5ever::tendril::{StrTendril, TendrilSink};
use html5ever::tree_builder::{ElemName, ElementFlags, NodeOrText, QuirksMode, TreeSink};
use html5ever::{local_name, ns, Attribute, LocalName, Namespace, ParseOpts, QualName};

/// Sink calls allowed per source byte. Ordinary rich text makes two to four per byte
/// of HTML (the tests below check it), and Markdown becomes at most about twice as
/// much HTML; 2,000 nested `<div>`s make 400, a formatting-element bomb 470. A call
/// costs about 30 ns, so the worst case is about 1.5 µs per source byte.
const CALLS_PER_BYTE: u64 = 48;
/// Calls allowed whatever the length, so short inputs are never refused.
const BASE_CALLS: u64 = 50_000;
/// Input is fed in pieces of this size; the budget is checked between them.
const PIECE: usize = 2048;

/// Whether parsing `html` stays within the budget for a source of `source_len` bytes
/// (the HTML itself, or the Markdown it was rendered from).
pub(super) fn within_budget(html: &str, source_len: usize) -> bool {
    let budget = BASE_CALLS + CALLS_PER_BYTE * source_len as u64;
    let calls = Rc::new(Cell::new(0u64));
    let sink = CountingSink {
        calls: calls.clone(),
        nodes: RefCell::new(vec![Node::default()]),
    };
    // The context ammonia parses fragments in: the body of a `<div>`.
    let mut parser = html5ever::parse_fragment(
        sink,
        ParseOpts::default(),
        QualName::new(None, ns!(html), local_name!("div")),
        Vec::new(),
        false,
    );
    let mut rest = html;
    while !rest.is_empty() {
        let mut end = rest.len().min(PIECE);
        while !rest.is_char_boundary(end) {
            end += 1;
        }
        parser.process(StrTendril::from_slice(&rest[..end]));
        rest = &rest[end..];
        if calls.get() > budget {
            return false;
        }
    }
    parser.finish();
    calls.get() <= budget
}

#[derive(Default)]
struct Node {
    name: Option<QualName>,
    annotation_xml_integration_point: bool,
}

/// A tree sink that keeps element names (the tree builder asks for them) and counts.
struct CountingSink {
    calls: Rc<Cell<u64>>,
    nodes: RefCell<Vec<Node>>,
}

impl CountingSink {
    fn tick(&self) {
        self.calls.set(self.calls.get() + 1);
    }

    fn push(&self, node: Node) -> usize {
        self.tick();
        let mut nodes = self.nodes.borrow_mut();
        nodes.push(node);
        nodes.len() - 1
    }
}

/// An element's name, owned: the sink's node list grows while the tree builder holds
/// names, so it cannot lend them.
#[derive(Debug)]
struct OwnedName(QualName);

impl ElemName for OwnedName {
    fn ns(&self) -> &Namespace {
        &self.0.ns
    }

    fn local_name(&self) -> &LocalName {
        &self.0.local
    }
}

impl TreeSink for CountingSink {
    type Handle = usize;
    type Output = ();
    type ElemName<'a> = OwnedName;

    fn finish(self) {}

    fn parse_error(&self, _msg: Cow<'static, str>) {
        self.tick();
    }

    fn get_document(&self) -> usize {
        0
    }

    fn elem_name<'a>(&'a self, target: &'a usize) -> OwnedName {
        self.tick();
        let nodes = self.nodes.borrow();
        OwnedName(
            nodes[*target]
                .name
                .clone()
                .unwrap_or_else(|| QualName::new(None, ns!(), local_name!(""))),
        )
    }

    fn create_element(&self, name: QualName, _: Vec<Attribute>, flags: ElementFlags) -> usize {
        let element = self.push(Node {
            name: Some(name),
            annotation_xml_integration_point: flags.mathml_annotation_xml_integration_point,
        });
        if flags.template {
            // The template's contents: always the next node.
            self.push(Node::default());
        }
        element
    }

    fn create_comment(&self, _: StrTendril) -> usize {
        self.push(Node::default())
    }

    fn create_pi(&self, _: StrTendril, _: StrTendril) -> usize {
        self.push(Node::default())
    }

    fn append(&self, _: &usize, _: NodeOrText<usize>) {
        self.tick();
    }

    fn append_based_on_parent_node(&self, _: &usize, _: &usize, _: NodeOrText<usize>) {
        self.tick();
    }

    fn append_doctype_to_document(&self, _: StrTendril, _: StrTendril, _: StrTendril) {
        self.tick();
    }

    fn pop(&self, _: &usize) {
        self.tick();
    }

    fn get_template_contents(&self, target: &usize) -> usize {
        self.tick();
        target + 1
    }

    fn same_node(&self, x: &usize, y: &usize) -> bool {
        self.tick();
        x == y
    }

    fn set_quirks_mode(&self, _: QuirksMode) {}

    fn append_before_sibling(&self, _: &usize, _: NodeOrText<usize>) {
        self.tick();
    }

    fn add_attrs_if_missing(&self, _: &usize, _: Vec<Attribute>) {
        self.tick();
    }

    fn remove_from_parent(&self, _: &usize) {
        self.tick();
    }

    fn reparent_children(&self, _: &usize, _: &usize) {
        self.tick();
    }

    fn is_mathml_annotation_xml_integration_point(&self, handle: &usize) -> bool {
        self.tick();
        self.nodes.borrow()[*handle].annotation_xml_integration_point
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calls(html: &str) -> u64 {
        let calls = Rc::new(Cell::new(0u64));
        let sink = CountingSink {
            calls: calls.clone(),
            nodes: RefCell::new(vec![Node::default()]),
        };
        html5ever::parse_fragment(
            sink,
            ParseOpts::default(),
            QualName::new(None, ns!(html), local_name!("div")),
            Vec::new(),
            false,
        )
        .one(html);
        calls.get()
    }

    #[test]
    fn ordinary_rich_text_costs_a_few_calls_per_byte() {
        let paragraph = "<p>Some <em>text</em> with <a href=\"https://a.example\">a link</a>, \
                         <code>code</code> and <strong>bold</strong>.</p>\n\
                         <ul><li>one</li><li>two <b>b</b></li></ul>\n\
                         <table><thead><tr><th>a</th></tr></thead><tbody><tr><td>1</td></tr></tbody></table>\n\
                         <blockquote><p>quoted <i>i</i></p></blockquote><pre><code>x &lt; y</code></pre>\n";
        let html = paragraph.repeat(200);
        let per_byte = calls(&html) as f64 / html.len() as f64;
        assert!(per_byte < 4.0, "{per_byte} calls per byte");
        assert!(within_budget(&html, html.len()));
    }

    #[test]
    fn nesting_a_hundred_deep_is_within_budget() {
        let html = format!(
            "{}x{}",
            "<blockquote>".repeat(100),
            "</blockquote>".repeat(100)
        )
        .repeat(20);
        assert!(within_budget(&html, html.len()));
    }

    #[test]
    fn deep_nesting_and_formatting_bombs_are_stopped() {
        for bomb in [
            "<div>".repeat(13_000),
            "<blockquote>\n".repeat(5_000),
            // Distinct formatting elements re-created in every paragraph.
            format!(
                "<div>{}</div>{}",
                (0..1000).map(|i| format!("<b a={i}>")).collect::<String>(),
                "<p>x</p>".repeat(1000)
            ),
        ] {
            assert!(!within_budget(&bomb, bomb.len()), "{}", &bomb[..40]);
        }
    }
}
