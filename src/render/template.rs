//! A rendered part with holes for the few values that differ per recipient.
//!
//! The issue is rendered (and its CSS inlined) once; each recipient then costs a copy of the
//! literal pieces plus their own greeting, address and unsubscribe link. Holes are marked in
//! the rendered output by Unicode noncharacters, which input validation never lets through.

use maud::{Escaper, Render};
use std::fmt::Write;

/// A value that differs per recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    Greeting,
    UnsubscribeUrl,
    RecipientEmail,
}

impl Slot {
    const ALL: [Slot; 3] = [Slot::Greeting, Slot::UnsubscribeUrl, Slot::RecipientEmail];

    /// The marker as text, to place a hole inside a longer string.
    pub fn marker_str(self) -> String {
        self.marker().to_string()
    }

    fn marker(self) -> char {
        match self {
            Slot::Greeting => '\u{FDD0}',
            Slot::UnsubscribeUrl => '\u{FDD1}',
            Slot::RecipientEmail => '\u{FDD2}',
        }
    }

    fn from_marker(c: char) -> Option<Slot> {
        Slot::ALL.into_iter().find(|slot| slot.marker() == c)
    }
}

/// In a Maud template, `(Slot::Greeting)` leaves a hole for that value.
impl Render for Slot {
    fn render_to(&self, buffer: &mut String) {
        buffer.push(self.marker());
    }
}

/// The per-recipient values, unescaped.
#[derive(Debug, Clone, Copy)]
pub struct SlotValues<'a> {
    pub greeting: &'a str,
    pub unsubscribe_url: &'a str,
    pub recipient_email: &'a str,
}

impl<'a> SlotValues<'a> {
    pub fn get(&self, slot: Slot) -> &'a str {
        match slot {
            Slot::Greeting => self.greeting,
            Slot::UnsubscribeUrl => self.unsubscribe_url,
            Slot::RecipientEmail => self.recipient_email,
        }
    }
}

/// How values are escaped when they fill a hole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    Html,
    None,
}

impl Escape {
    /// `value` made safe for the part it goes into.
    pub fn apply(self, value: &str) -> String {
        match self {
            Escape::None => value.to_string(),
            Escape::Html => {
                let mut escaped = String::with_capacity(value.len());
                Escaper::new(&mut escaped)
                    .write_str(value)
                    .expect("writing to a String cannot fail");
                escaped
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// One more literal than slots: literal, slot, literal, ..., literal.
    literals: Vec<String>,
    slots: Vec<Slot>,
    escape: Escape,
}

impl Template {
    /// Splits rendered output at its slot markers.
    pub fn from_marked(marked: &str, escape: Escape) -> Template {
        let mut literals = Vec::new();
        let mut slots = Vec::new();
        let mut start = 0;
        for (index, c) in marked.char_indices() {
            if let Some(slot) = Slot::from_marker(c) {
                literals.push(marked[start..index].to_string());
                slots.push(slot);
                start = index + c.len_utf8();
            }
        }
        literals.push(marked[start..].to_string());
        Template {
            literals,
            slots,
            escape,
        }
    }

    pub fn literals(&self) -> &[String] {
        &self.literals
    }

    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    pub fn escape(&self) -> Escape {
        self.escape
    }

    /// The value for `slot` as it goes into this part.
    pub fn escaped(&self, value: &str) -> String {
        self.escape.apply(value)
    }

    /// The part for one recipient.
    pub fn fill(&self, values: &SlotValues) -> String {
        let mut out =
            String::with_capacity(self.literals.iter().map(String::len).sum::<usize>() + 256);
        for (literal, slot) in self.literals.iter().zip(&self.slots) {
            out.push_str(literal);
            out.push_str(&self.escaped(values.get(*slot)));
        }
        out.push_str(
            self.literals
                .last()
                .expect("a template has a final literal"),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use maud::html;

    const VALUES: SlotValues = SlotValues {
        greeting: "Hi <Ada> & co,",
        unsubscribe_url: "https://x.example/u/a?b=1&c=2",
        recipient_email: "ada@example.com",
    };

    #[test]
    fn holes_are_filled_and_escaped_for_html() {
        let marked =
            html! { p { (Slot::Greeting) } a href=(Slot::UnsubscribeUrl) { "Unsubscribe" } }
                .into_string();
        let template = Template::from_marked(&marked, Escape::Html);
        assert_eq!(template.slots(), [Slot::Greeting, Slot::UnsubscribeUrl]);
        assert_eq!(
            template.fill(&VALUES),
            "<p>Hi &lt;Ada&gt; &amp; co,</p><a href=\"https://x.example/u/a?b=1&amp;c=2\">Unsubscribe</a>"
        );
    }

    #[test]
    fn plain_text_holes_are_filled_verbatim() {
        let template = Template::from_marked("\u{FDD0}\nsent to \u{FDD2}.", Escape::None);
        assert_eq!(
            template.fill(&VALUES),
            "Hi <Ada> & co,\nsent to ada@example.com."
        );
    }
}
