//! The confirmation email of a web sign-up as a MIME message: one recipient, one link, no
//! list headers (it is not an issue, and unsubscribing from it means ignoring it).

use super::encode::{mailbox, quoted_printable, unstructured_header};
use crate::model::address::EmailAddress;
use crate::model::newsletter::Newsletter;

/// The whole message to `to`, dated `date` (RFC 5322), with a new Message-ID.
pub fn confirmation_message(
    newsletter: &Newsletter,
    to: &EmailAddress,
    name: Option<&str>,
    link: &str,
    date: &str,
) -> Vec<u8> {
    let (html, text) = crate::render::confirm::bodies(newsletter, link);
    let mut head = String::new();
    head.push_str("Date: ");
    head.push_str(date);
    head.push_str("\r\nFrom: ");
    mailbox(
        newsletter.from.name.as_ref().map(|name| name.as_str()),
        &newsletter.from.address.header_form(),
        &mut head,
    );
    head.push_str("\r\n");
    if let Some(reply_to) = &newsletter.reply_to {
        head.push_str("Reply-To: ");
        mailbox(
            reply_to.name.as_ref().map(|name| name.as_str()),
            &reply_to.address.header_form(),
            &mut head,
        );
        head.push_str("\r\n");
    }
    head.push_str("To: ");
    mailbox(name, &to.header_form(), &mut head);
    head.push_str("\r\n");
    unstructured_header(
        "Subject",
        &crate::render::confirm::subject(newsletter),
        &mut head,
    );
    let id = super::random_hex();
    head.push_str(&format!(
        "Message-ID: <confirm.{id}@{}>\r\n",
        newsletter.from.address.ascii_domain()
    ));
    // RFC 3834: sent by a program in answer to a request, so no auto-reply should answer it.
    head.push_str("Auto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n");
    let boundary = format!("=_lp_confirm_{}", &id[..16]);
    head.push_str(&format!(
        "Content-Type: multipart/alternative;\r\n boundary=\"{boundary}\"\r\n\r\n"
    ));
    let mut out = head.into_bytes();
    for (content_type, body) in [("text/plain", text), ("text/html", html)] {
        out.extend_from_slice(format!("--{boundary}\r\nContent-Type: {content_type}; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n").as_bytes());
        let mut column = 0;
        quoted_printable(body.as_bytes(), &mut column, true, &mut out);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    out
}
