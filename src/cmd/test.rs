//! `letterpress test`: the issue in the editor's own inbox, marked as a test.

use std::process::ExitCode;

use super::Context;
use crate::delivery::proof::send_proofs;
use crate::delivery::transport::{Destination, Transport};
use crate::diagnostic::Invalid;
use crate::ledger::ProofOutcome;
use crate::model::address::EmailAddress;

pub fn run(context: &Context, issue_argument: &str, to: &[String]) -> anyhow::Result<ExitCode> {
    let edition = context.load_edition(issue_argument)?;
    let recipients: Vec<EmailAddress> = if to.is_empty() {
        edition.newsletter.test_recipients.clone()
    } else {
        to.iter()
            .map(|text| {
                EmailAddress::parse(text).map_err(|error| Invalid::usage(format!("--to {error}")))
            })
            .collect::<Result<_, _>>()?
    };
    if recipients.is_empty() {
        return Err(Invalid::usage(
            "no one to send the test to: pass --to ADDRESS or set test_recipients in newsletter.yaml",
        )
        .into());
    }
    let destination = Destination::from_settings(&context.settings)?;
    let secret = context.secret()?;
    let transport = Transport::open(
        &destination,
        &context.state,
        &edition.newsletter,
        &format!("{}/tests", edition.issue.id),
    )?;
    let mut ledger = context.state.open_ledger()?;
    println!(
        "Sending a test of \"{}\" ({}) via {}",
        edition.issue.subject,
        edition.issue_file,
        transport.describe()
    );
    if let Some(signing) = transport.signing() {
        println!("Signing with {signing}");
    }
    let proofs = super::runtime()?.block_on(async {
        let proofs = send_proofs(
            &edition,
            &recipients,
            &transport,
            &mut ledger,
            &secret,
            context.clock.as_ref(),
        )
        .await;
        transport.shutdown().await;
        proofs
    })?;
    for proof in &proofs {
        println!(
            "  {}: {} ({})",
            proof.recipient,
            proof.outcome.as_str(),
            crate::units::printable(&proof.reply)
        );
    }
    let all_sent = proofs
        .iter()
        .all(|proof| proof.outcome == ProofOutcome::Sent);
    Ok(super::exit_status(all_sent))
}
