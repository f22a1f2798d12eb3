//! One MIME message per recipient, assembled from pieces encoded once per issue.
//!
//! The headers and both body parts are prepared when the issue is loaded; a recipient costs
//! their To header, Message-ID and List-Unsubscribe, plus the quoted-printable encoding of
//! the few values in the body that are theirs (greeting, address, unsubscribe link).

pub mod dkim;
pub mod encode;

use sha2::{Digest, Sha256};

use crate::model::address::EmailAddress;
use crate::model::issue::Issue;
use crate::model::newsletter::Newsletter;
use crate::render::RenderedIssue;
use crate::render::template::{Escape, Slot, SlotValues, Template};
use crate::secret::Secret;
use crate::theme::Texts;
use encode::{mailbox, phrase, quoted_printable, soft_break, unstructured_header};

/// Who a message is for.
#[derive(Debug, Clone, Copy)]
pub struct Recipient<'a> {
    pub email: &'a EmailAddress,
    pub name: Option<&'a str>,
}

/// Whether a message is the real thing or a test for the editor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Issue,
    Test,
}

/// A body part encoded up to its holes.
#[derive(Debug, Clone)]
struct EncodedPart {
    /// Quoted-printable pieces, each ending at the start of a line (soft or hard break), so a
    /// value encoded on its own can follow.
    literals: Vec<Vec<u8>>,
    slots: Vec<Slot>,
    escape: Escape,
}

impl EncodedPart {
    fn new(template: &Template) -> Self {
        let count = template.literals().len();
        let literals = template
            .literals()
            .iter()
            .enumerate()
            .map(|(index, literal)| {
                let mut out = Vec::with_capacity(literal.len() * 11 / 10);
                let mut column = 0;
                let last = index + 1 == count;
                quoted_printable(literal.as_bytes(), &mut column, last, &mut out);
                if !last {
                    soft_break(&mut column, &mut out);
                }
                out
            })
            .collect();
        EncodedPart {
            literals,
            slots: template.slots().to_vec(),
            escape: template.escape(),
        }
    }

    fn write(&self, values: &SlotValues, out: &mut Vec<u8>) {
        let last = self.literals.len() - 1;
        for (literal, slot) in self.literals[..last].iter().zip(&self.slots) {
            out.extend_from_slice(literal);
            let mut column = 0;
            let value = self.escape.apply(values.get(*slot));
            quoted_printable(value.as_bytes(), &mut column, false, out);
            soft_break(&mut column, out);
        }
        out.extend_from_slice(&self.literals[last]);
    }

    fn size_hint(&self) -> usize {
        self.literals.iter().map(Vec::len).sum::<usize>() + 512
    }
}

/// Everything about an issue's messages that is the same for every recipient.
#[derive(Debug, Clone)]
pub struct MessageTemplate {
    issue_id: String,
    list_id: String,
    message_id_domain: String,
    unsubscribe_mailto: String,
    site_unsubscribe_base: Option<String>,
    /// From, Reply-To: before To.
    head_before_to: String,
    /// Subject, MIME-Version, List-Id: after To.
    head_after_to: String,
    boundary: String,
    text: EncodedPart,
    html: EncodedPart,
    texts: Texts,
}

/// The address-independent name of the list (RFC 2919): `name-slug.host`.
pub fn list_id(newsletter: &Newsletter) -> String {
    let slug: String = newsletter
        .name
        .as_str()
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    let slug = if slug.is_empty() {
        "newsletter".to_string()
    } else {
        slug
    };
    let host = match &newsletter.site_url {
        Some(site) => site.host().to_lowercase(),
        None => newsletter.from.address.domain().to_lowercase(),
    };
    format!("{slug}.{host}")
}

/// The links a recipient unsubscribes with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubscribeLinks {
    /// The one-click https URL, when the newsletter has a site.
    pub https: Option<String>,
    pub mailto: String,
}

impl UnsubscribeLinks {
    /// The link in the body: the web page when there is one.
    pub fn preferred(&self) -> &str {
        self.https.as_deref().unwrap_or(&self.mailto)
    }
}

impl MessageTemplate {
    pub fn new(
        newsletter: &Newsletter,
        issue: &Issue,
        rendered: &RenderedIssue,
        texts: &Texts,
        kind: Kind,
    ) -> Self {
        let list_id = list_id(newsletter);
        let mut head_before_to = String::new();
        head_before_to.push_str("From: ");
        mailbox(
            newsletter.from.name.as_ref().map(|name| name.as_str()),
            newsletter.from.address.as_str(),
            &mut head_before_to,
        );
        head_before_to.push_str("\r\n");
        if let Some(reply_to) = &newsletter.reply_to {
            head_before_to.push_str("Reply-To: ");
            mailbox(
                reply_to.name.as_ref().map(|name| name.as_str()),
                reply_to.address.as_str(),
                &mut head_before_to,
            );
            head_before_to.push_str("\r\n");
        }

        let subject = match kind {
            Kind::Issue => issue.subject.as_str().to_string(),
            Kind::Test => format!("[TEST] {}", issue.subject),
        };
        let mut head_after_to = String::new();
        unstructured_header("Subject", &subject, &mut head_after_to);
        head_after_to.push_str("MIME-Version: 1.0\r\n");
        head_after_to.push_str("List-Id: ");
        phrase(newsletter.name.as_str(), &mut head_after_to);
        head_after_to.push_str(&format!(" <{list_id}>\r\n"));

        // The boundary starts with `=_`, which quoted-printable output can never contain, so
        // no body can end a part early; it is derived from the content to keep output stable.
        let digest = Sha256::digest(
            [
                rendered.html.literals().concat(),
                rendered.text.literals().concat(),
            ]
            .concat(),
        );
        let boundary = format!(
            "=_lp_{}",
            digest[..12]
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect::<String>()
        );

        MessageTemplate {
            issue_id: issue.id.as_str().to_string(),
            message_id_domain: newsletter.from.address.domain().to_lowercase(),
            unsubscribe_mailto: format!("mailto:{}", newsletter.reply_address()),
            site_unsubscribe_base: newsletter
                .site_url
                .as_ref()
                .map(|site| site.join("unsubscribe/")),
            list_id,
            head_before_to,
            head_after_to,
            boundary,
            text: EncodedPart::new(&rendered.text),
            html: EncodedPart::new(&rendered.html),
            texts: texts.clone(),
        }
    }

    pub fn list_id(&self) -> &str {
        &self.list_id
    }

    pub fn unsubscribe_links(&self, secret: &Secret, email: &EmailAddress) -> UnsubscribeLinks {
        let token = secret.unsubscribe_token(&self.list_id, &email.key());
        UnsubscribeLinks {
            https: self
                .site_unsubscribe_base
                .as_ref()
                .map(|base| format!("{base}{token}")),
            mailto: format!("{}?subject=unsubscribe%20{token}", self.unsubscribe_mailto),
        }
    }

    /// The Message-ID, the same every time for this issue and recipient.
    pub fn message_id(&self, secret: &Secret, email: &EmailAddress) -> String {
        let tag = secret.message_tag(&self.list_id, &self.issue_id, &email.key());
        format!("<{}.{tag}@{}>", self.issue_id, self.message_id_domain)
    }

    /// Appends the complete message for `recipient` to `out`. `date` is an RFC 5322 date.
    pub fn write(&self, recipient: Recipient, secret: &Secret, date: &str, out: &mut Vec<u8>) {
        out.reserve(self.text.size_hint() + self.html.size_hint() + 1024);
        let links = self.unsubscribe_links(secret, recipient.email);
        let mut head = String::with_capacity(1024);
        head.push_str("Date: ");
        head.push_str(date);
        head.push_str("\r\n");
        head.push_str(&self.head_before_to);
        head.push_str("To: ");
        mailbox(recipient.name, recipient.email.as_str(), &mut head);
        head.push_str("\r\n");
        head.push_str(&self.head_after_to);
        head.push_str("Message-ID: ");
        head.push_str(&self.message_id(secret, recipient.email));
        head.push_str("\r\nList-Unsubscribe: ");
        if let Some(https) = &links.https {
            head.push('<');
            head.push_str(https);
            head.push_str(">,\r\n ");
        }
        head.push('<');
        head.push_str(&links.mailto);
        head.push_str(">\r\n");
        if links.https.is_some() {
            // RFC 8058: mail providers POST this body to the https URL; no mailto, no page.
            head.push_str("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n");
        }
        head.push_str("Content-Type: multipart/alternative;\r\n boundary=\"");
        head.push_str(&self.boundary);
        head.push_str("\"\r\n\r\n");
        out.extend_from_slice(head.as_bytes());

        let greeting = self.texts.greeting_for(recipient.name);
        let values = SlotValues {
            greeting: &greeting,
            unsubscribe_url: links.preferred(),
            recipient_email: recipient.email.as_str(),
        };
        for (content_type, part) in [("text/plain", &self.text), ("text/html", &self.html)] {
            out.extend_from_slice(b"--");
            out.extend_from_slice(self.boundary.as_bytes());
            out.extend_from_slice(b"\r\nContent-Type: ");
            out.extend_from_slice(content_type.as_bytes());
            out.extend_from_slice(
                b"; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n",
            );
            part.write(&values, out);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"--");
        out.extend_from_slice(self.boundary.as_bytes());
        out.extend_from_slice(b"--\r\n");
    }
}
