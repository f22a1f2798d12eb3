//! `letterpress test`: the issue in the editor's own inbox, marked as a test.
//!
//! Tests are logged in the ledger but never count as deliveries: the real send still goes to
//! everyone, test recipients included if they are subscribers.

use std::process::ExitCode;
use std::sync::Arc;

use lettre::address::Envelope;

use crate::delivery::transport::{Attempt, Transport};
use crate::message::{Kind, Recipient};
use crate::model::address::EmailAddress;

use super::{Context, InvalidInput};

pub fn run(context: &Context, issue_argument: &str, to: &[String]) -> anyhow::Result<ExitCode> {
    let workspace = &context.workspace;
    let edition = super::load_edition(workspace, issue_argument)?;
    let recipients: Vec<EmailAddress> = if to.is_empty() {
        edition.newsletter.test_recipients.clone()
    } else {
        let mut addresses = Vec::new();
        for text in to {
            addresses
                .push(EmailAddress::parse(text).map_err(|error| usage(format!("--to {error}")))?);
        }
        addresses
    };
    if recipients.is_empty() {
        return Err(usage(
            "no one to send the test to: pass --to ADDRESS or set test_recipients in newsletter.yaml".into(),
        )
        .into());
    }
    let issue_id = edition.issue.id.as_str().to_string();
    let secret = Arc::new(workspace.secret()?);
    let template = edition.message_template(Kind::Test)?;
    let transport = Transport::from_env(
        workspace,
        &edition.newsletter.delivery,
        &format!("{issue_id}/tests"),
    )?;
    let mut ledger = workspace.open_ledger()?;
    println!(
        "Sending a test of \"{}\" ({}) via {}",
        edition.issue.subject,
        edition.issue_file,
        transport.describe()
    );
    let sender = edition.newsletter.from.address.as_lettre().clone();
    let runtime = super::runtime()?;
    let mut all_delivered = true;
    runtime.block_on(async {
        for recipient in &recipients {
            let mut message = Vec::new();
            template.write(
                Recipient {
                    email: recipient,
                    name: None,
                },
                &secret,
                &context.clock.now().to_rfc2822(),
                &mut message,
            );
            let attempt =
                match Envelope::new(Some(sender.clone()), vec![recipient.as_lettre().clone()]) {
                    Ok(envelope) => transport.send(&envelope, &message).await,
                    Err(error) => Attempt::Permanent(error.to_string()),
                };
            let (outcome, reply) = match &attempt {
                Attempt::Delivered(reply) => ("sent", reply),
                Attempt::Transient(reply) => ("deferred", reply),
                Attempt::Permanent(reply) => ("failed", reply),
                Attempt::Fatal(reply) => ("failed", reply),
            };
            all_delivered &= outcome == "sent";
            ledger.log_test_send(
                &issue_id,
                &recipient.key(),
                outcome,
                Some(reply),
                context.clock.now(),
            )?;
            println!("  {recipient}: {outcome} ({reply})");
        }
        transport.shutdown().await;
        anyhow::Ok(())
    })?;
    Ok(super::exit_status(all_delivered))
}

fn usage(message: String) -> InvalidInput {
    InvalidInput {
        diagnostics: Default::default(),
        summary: message,
    }
}
