//! Lists exported from other tools, recognised by their header rows: Mailchimp's audience
//! exports (its subscribed, unsubscribed and cleaned files), Substack's, Buttondown's and
//! listmonk's subscriber exports, and any CSV with an `email` column. Each row becomes a
//! reader to add, an address to suppress (it unsubscribed, bounced or complained there), or
//! one to leave out (it never confirmed, or was disabled), with the line it came from.

use std::io::BufRead;

use super::csv::CsvReader;
use crate::model::address::EmailAddress;
use crate::model::text::OneLine;

/// Which tool wrote the export, as its header row says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One of the files in Mailchimp's audience export.
    Mailchimp(MailchimpFile),
    Substack,
    Buttondown,
    Listmonk,
    /// Any CSV with an `email` column (and perhaps `name` and `status`).
    Plain,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailchimpFile {
    Subscribed,
    Unsubscribed,
    Cleaned,
}

impl Format {
    pub fn describe(self) -> &'static str {
        match self {
            Format::Mailchimp(MailchimpFile::Subscribed) => {
                "a Mailchimp export (subscribed members)"
            }
            Format::Mailchimp(MailchimpFile::Unsubscribed) => {
                "a Mailchimp export (unsubscribed members)"
            }
            Format::Mailchimp(MailchimpFile::Cleaned) => "a Mailchimp export (cleaned members)",
            Format::Substack => "a Substack export",
            Format::Buttondown => "a Buttondown export",
            Format::Listmonk => "a listmonk export",
            Format::Plain => "a CSV with an email column",
        }
    }

    fn tool(self) -> &'static str {
        match self {
            Format::Mailchimp(_) => "Mailchimp",
            Format::Substack => "Substack",
            Format::Buttondown => "Buttondown",
            Format::Listmonk => "listmonk",
            Format::Plain => "the imported list",
        }
    }
}

/// What a row says about its address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowStatus {
    /// A reader there: one here too.
    Active,
    /// Unsubscribed, cleaned, bounced or complained there: never mail them here. The reason
    /// goes with the suppression.
    Suppress(String),
    /// Neither: never confirmed, or disabled. Left out, nothing recorded.
    Skip,
}

/// One row of the export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub line: u64,
    /// The address, or the text that is not one.
    pub address: Result<EmailAddress, String>,
    pub name: Option<OneLine>,
    pub status: RowStatus,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(
        "the first row has no email column (found: {0}); export the list as CSV from Mailchimp, Substack, Buttondown or listmonk, or give the column the name `email`"
    )]
    NoEmailColumn(String),
    #[error("the file is empty")]
    Empty,
    #[error("cannot read it")]
    Io(#[from] std::io::Error),
}

/// The columns this format's rows are read from.
struct Columns {
    email: usize,
    name: Vec<usize>,
    status: Option<usize>,
}

/// Reads a whole export.
pub fn read_export(input: impl BufRead) -> Result<(Format, Vec<Row>), ImportError> {
    let mut reader = CsvReader::new(input);
    let header = reader.next_record()?.ok_or(ImportError::Empty)?;
    let names: Vec<String> = header
        .fields
        .iter()
        .map(|name| name.trim().to_lowercase())
        .collect();
    let find = |wanted: &[&str]| {
        names
            .iter()
            .position(|name| wanted.contains(&name.as_str()))
    };
    let has = |wanted: &str| names.iter().any(|name| name == wanted);
    let format = if has("email address") && (has("member_rating") || has("leid") || has("euid")) {
        Format::Mailchimp(if has("unsub_time") {
            MailchimpFile::Unsubscribed
        } else if has("clean_time") {
            MailchimpFile::Cleaned
        } else {
            MailchimpFile::Subscribed
        })
    } else if has("active_subscription") || has("email_disabled") {
        Format::Substack
    } else if (has("subscriber_type") || has("type")) && has("creation_date") {
        Format::Buttondown
    } else if has("uuid") && has("attributes") && has("status") {
        Format::Listmonk
    } else {
        Format::Plain
    };
    let email = find(&["email", "email address", "email_address", "e-mail", "mail"])
        .ok_or_else(|| ImportError::NoEmailColumn(header.fields.join(", ")))?;
    let columns = Columns {
        email,
        name: match format {
            Format::Mailchimp(_) => ["first name", "last name"]
                .iter()
                .filter_map(|name| find(&[name]))
                .collect(),
            _ => find(&["name", "full name", "full_name"])
                .into_iter()
                .collect(),
        },
        status: match format {
            Format::Substack => find(&["email_disabled"]),
            Format::Buttondown => find(&["subscriber_type", "type"]),
            Format::Listmonk | Format::Plain => find(&["status", "state"]),
            Format::Mailchimp(_) => None,
        },
    };
    let mut rows = Vec::new();
    while let Some(record) = reader.next_record()? {
        let field = |index: usize| record.fields.get(index).map_or("", |field| field.trim());
        let raw = field(columns.email);
        let name = columns
            .name
            .iter()
            .map(|&index| field(index))
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let status = status_of(format, columns.status.map(field).unwrap_or_default());
        rows.push(Row {
            line: record.line,
            address: EmailAddress::parse(raw).map_err(|_| raw.to_string()),
            name: OneLine::parse(&name).ok(),
            status,
        });
    }
    Ok((format, rows))
}

fn status_of(format: Format, status: &str) -> RowStatus {
    let status = status.trim().to_lowercase();
    let suppress = |what: &str| RowStatus::Suppress(format!("{what} in {}", format.tool()));
    match format {
        Format::Mailchimp(MailchimpFile::Subscribed) => RowStatus::Active,
        Format::Mailchimp(MailchimpFile::Unsubscribed) => suppress("unsubscribed"),
        Format::Mailchimp(MailchimpFile::Cleaned) => suppress("cleaned (bounced)"),
        Format::Substack => match status.as_str() {
            "true" | "yes" | "1" => suppress("email disabled (unsubscribed)"),
            _ => RowStatus::Active,
        },
        Format::Buttondown => match status.as_str() {
            "unactivated" | "paused" => RowStatus::Skip,
            "unsubscribed" | "removed" => suppress(&status),
            "undeliverable" | "bounced" => suppress("undeliverable (bounced)"),
            "complained" | "spammy" => suppress("marked as spam"),
            _ => RowStatus::Active,
        },
        Format::Listmonk => match status.as_str() {
            "blocklisted" | "blacklisted" => suppress("blocklisted"),
            "disabled" => RowStatus::Skip,
            _ => RowStatus::Active,
        },
        Format::Plain => match status.as_str() {
            "" | "active" | "subscribed" | "enabled" | "confirmed" => RowStatus::Active,
            "unsubscribed" | "cleaned" | "bounced" | "blocklisted" | "complained" => {
                suppress(&status)
            }
            _ => RowStatus::Skip,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_tool_is_recognised_by_its_header_row() {
        let cases = [
            (
                "Email Address,First Name,Last Name,MEMBER_RATING,OPTIN_TIME,LEID,EUID\n",
                Format::Mailchimp(MailchimpFile::Subscribed),
            ),
            (
                "Email Address,First Name,MEMBER_RATING,LEID,UNSUB_TIME,UNSUB_REASON\n",
                Format::Mailchimp(MailchimpFile::Unsubscribed),
            ),
            (
                "Email Address,MEMBER_RATING,LEID,CLEAN_TIME\n",
                Format::Mailchimp(MailchimpFile::Cleaned),
            ),
            (
                "email,active_subscription,expiry,plan,email_disabled,created_at\n",
                Format::Substack,
            ),
            (
                "email,notes,metadata,tags,creation_date,subscriber_type\n",
                Format::Buttondown,
            ),
            (
                "uuid,email,name,attributes,status,created_at,updated_at\n",
                Format::Listmonk,
            ),
            ("Name,E-mail\n", Format::Plain),
        ];
        for (header, format) in cases {
            assert_eq!(
                read_export(header.as_bytes()).unwrap().0,
                format,
                "{header}"
            );
        }
        assert!(matches!(
            read_export("name,phone\n".as_bytes()),
            Err(ImportError::NoEmailColumn(_))
        ));
    }

    #[test]
    fn rows_become_readers_suppressions_or_nothing_with_their_lines() {
        let (_, rows) = read_export(
            "email,notes,metadata,tags,creation_date,subscriber_type\nada@example.com,,{},,2021-01-01,regular\nbob@example.com,,{},,2021-01-01,unsubscribed\nnot-an-address,,{},,2021-01-01,regular\ncy@example.com,,{},,2021-01-01,unactivated\n".as_bytes(),
        )
        .unwrap();
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0].status, RowStatus::Active);
        assert_eq!(
            rows[1].status,
            RowStatus::Suppress("unsubscribed in Buttondown".into())
        );
        assert_eq!(
            (rows[2].line, rows[2].address.clone()),
            (4, Err("not-an-address".into()))
        );
        assert_eq!(rows[3].status, RowStatus::Skip);
        let (_, rows) = read_export(
            "Email Address,First Name,Last Name,MEMBER_RATING,LEID\nada@example.com,Ada,Okafor,2,1\n"
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(rows[0].name.as_ref().unwrap().as_str(), "Ada Okafor");
    }
}
