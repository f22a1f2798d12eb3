//! One MIME message per recipient, assembled from pieces encoded once per issue.
//!
//! The headers and both body parts are prepared when the issue is loaded; a recipient costs
//! their To header, Message-ID and List-Unsubscribe, plus the quoted-printable encoding of
//! the few values in the body that are theirs (greeting, address, unsubscribe link).

pub mod confirm;
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
use encode::{angle_addr, mailbox, phrase, quoted_printable, soft_break, unstructured_header};

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
    kind: Kind,
    issue_id: String,
    list_id: String,
    /// What tokens and Message-IDs are signed with: the ledger's fixed list key (see
    /// `Ledger::list_key`), or the list id until the ledger has one.
    list_key: String,
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

/// Unsubscribe links in proofs start with this: `serve` answers them with a page saying the
/// link came in a test, and changes nothing.
pub const TEST_TOKEN_PREFIX: &str = "test.";

/// 16 random bytes in hex, for a proof's Message-ID.
fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    // Without randomness (which never fails on Linux), the clock still makes it unique.
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        bytes = nanos.to_le_bytes();
    }
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
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
    // RFC 2919 keeps a list id within 255 characters; the name's first words say enough.
    let slug = match slug.char_indices().nth(64) {
        Some((cut, _)) => slug[..cut].trim_end_matches('-').to_string(),
        None => slug,
    };
    let slug = if slug.is_empty() {
        "newsletter".to_string()
    } else {
        slug
    };
    let host = match &newsletter.site_url {
        Some(site) => site.host().to_lowercase(),
        None => newsletter.from.address.ascii_domain(),
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

/// What differs per recipient, worked out once: `write` fills its holes with it, and so does
/// anyone who fills the rendered parts for one reader (render's files, check's size).
#[derive(Debug, Clone)]
pub struct Personal {
    pub greeting: String,
    pub links: UnsubscribeLinks,
    pub email: String,
}

impl Personal {
    pub fn values(&self) -> SlotValues<'_> {
        SlotValues {
            greeting: &self.greeting,
            unsubscribe_url: self.links.preferred(),
            recipient_email: &self.email,
        }
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
            &newsletter.from.address.header_form(),
            &mut head_before_to,
        );
        head_before_to.push_str("\r\n");
        if let Some(reply_to) = &newsletter.reply_to {
            head_before_to.push_str("Reply-To: ");
            mailbox(
                reply_to.name.as_ref().map(|name| name.as_str()),
                &reply_to.address.header_form(),
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
        angle_addr(&list_id, &mut head_after_to);
        head_after_to.push_str("\r\n");

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
            kind,
            issue_id: issue.id.as_str().to_string(),
            list_key: list_id.clone(),
            message_id_domain: newsletter.from.address.ascii_domain(),
            unsubscribe_mailto: format!("mailto:{}", newsletter.reply_address().header_form()),
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

    /// The template signing its tokens and Message-IDs with the ledger's fixed list key, so
    /// links keep working whatever the newsletter is renamed to.
    pub fn keyed(mut self, list_key: String) -> Self {
        self.list_key = list_key;
        self
    }

    pub fn unsubscribe_links(&self, secret: &Secret, email: &EmailAddress) -> UnsubscribeLinks {
        let token = match self.kind {
            Kind::Issue => secret.unsubscribe_token(&self.list_key, &email.key()),
            // A proof's link leads to a page saying so, and unsubscribes nobody: the `.`
            // never occurs in a real token.
            Kind::Test => format!(
                "{TEST_TOKEN_PREFIX}{}",
                secret.unsubscribe_token(&self.list_key, &email.key())
            ),
        };
        UnsubscribeLinks {
            https: self
                .site_unsubscribe_base
                .as_ref()
                .map(|base| format!("{base}{token}")),
            mailto: format!("{}?subject=unsubscribe%20{token}", self.unsubscribe_mailto),
        }
    }

    /// The greeting, links and address of one recipient.
    pub fn personal(&self, recipient: Recipient, secret: &Secret) -> Personal {
        Personal {
            greeting: self.texts.greeting_for(recipient.name),
            links: self.unsubscribe_links(secret, recipient.email),
            email: recipient.email.as_str().to_string(),
        }
    }

    /// The Message-ID: for the issue, the same every time for this recipient (a resent
    /// message is recognisably the same); for a proof, a new one each time, so that no mail
    /// app folds a proof into another proof or into the real issue.
    pub fn message_id(&self, secret: &Secret, email: &EmailAddress) -> String {
        let tag = match self.kind {
            Kind::Issue => secret.message_tag(&self.list_key, &self.issue_id, &email.key()),
            Kind::Test => format!("test.{}", random_hex()),
        };
        format!("<{}.{tag}@{}>", self.issue_id, self.message_id_domain)
    }

    /// Appends the complete message for `recipient` to `out`. `date` is an RFC 5322 date.
    pub fn write(&self, recipient: Recipient, secret: &Secret, date: &str, out: &mut Vec<u8>) {
        out.reserve(self.text.size_hint() + self.html.size_hint() + 1024);
        let personal = self.personal(recipient, secret);
        let links = &personal.links;
        let mut head = String::with_capacity(1024);
        head.push_str("Date: ");
        head.push_str(date);
        head.push_str("\r\n");
        head.push_str(&self.head_before_to);
        head.push_str("To: ");
        mailbox(recipient.name, &recipient.email.header_form(), &mut head);
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

        let values = personal.values();
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
