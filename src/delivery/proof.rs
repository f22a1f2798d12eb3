//! Proofs: the issue in the editor's own inbox, marked as a test (`letterpress test`).
//!
//! Proofs are logged in the ledger but never count as deliveries: the real send still goes to
//! everyone, test recipients included if they are subscribers.

use super::transport::{Attempt, Envelope, Transport};
use crate::clock::Clock;
use crate::edition::Edition;
use crate::ledger::{Ledger, ProofOutcome};
use crate::message::{Kind, Recipient};
use crate::model::address::EmailAddress;
use crate::secret::Secret;

/// How the proof to one address went.
#[derive(Debug, Clone)]
pub struct Proof {
    pub recipient: EmailAddress,
    pub outcome: ProofOutcome,
    /// The relay's reply, or where the outbox put it.
    pub reply: String,
}

/// Sends a proof to each address, one after the other, logging each in the ledger. A test
/// recipient who is on the list is greeted by their name there.
pub async fn send_proofs(
    edition: &Edition,
    recipients: &[EmailAddress],
    transport: &Transport,
    ledger: &mut Ledger,
    secret: &Secret,
    clock: &dyn Clock,
) -> anyhow::Result<Vec<Proof>> {
    let list_key = ledger.list_key(&edition.list_id())?;
    let template = edition.message_template(Kind::Test)?.keyed(list_key);
    // A proof is no delivery: no VERP tag names it, but its bounces still go where the
    // newsletter's bounces go, not to the editors' From address.
    let newsletter = &edition.newsletter;
    let sender = newsletter
        .bounce_address
        .as_ref()
        .unwrap_or(&newsletter.from.address);
    let mut proofs = Vec::with_capacity(recipients.len());
    for recipient in recipients {
        let key = recipient.key();
        let reader = super::audience::find_reader(&edition.list, Some(&*ledger), &key)?;
        let name = reader.as_ref().and_then(|reader| reader.name.as_deref());
        let mut message = Vec::new();
        template.write(
            Recipient {
                email: recipient,
                name,
            },
            secret,
            &clock.now().to_rfc2822(),
            &mut message,
        );
        let attempt = transport
            .send(&Envelope::new(sender, recipient), &message)
            .await;
        let (outcome, reply) = match attempt {
            Attempt::Delivered(reply) => (ProofOutcome::Sent, reply),
            Attempt::Transient(reply) | Attempt::Unsendable(reply) => {
                (ProofOutcome::Deferred, reply)
            }
            Attempt::Uncertain(reply) => (ProofOutcome::Uncertain, reply),
            Attempt::Permanent(reply) | Attempt::Refused(reply) | Attempt::Fatal(reply) => {
                (ProofOutcome::Failed, reply)
            }
        };
        ledger.log_test_send(
            &edition.issue.id,
            &recipient.key(),
            outcome,
            Some(&reply),
            clock.now(),
        )?;
        proofs.push(Proof {
            recipient: recipient.clone(),
            outcome,
            reply,
        });
    }
    Ok(proofs)
}
