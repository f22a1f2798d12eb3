//! `signups` and `signup_mails`: readers who joined on the web, with the record of their
//! consent (when they asked and confirmed, from which IP address and user agent: GDPR asks a
//! sender to be able to prove it), and the confirmation emails sent to each address, which
//! bound how often the form can mail anyone.

use chrono::{DateTime, Duration, Utc};
use rusqlite::{OptionalExtension, params};

use super::{Ledger, Result, Source, parse_timestamp, parse_word, timestamp};
use crate::model::address::AddressKey;

/// At most this many confirmation emails to one address in [`MAIL_WINDOW`]: enough for a
/// reader who lost the first one, too few to turn the form against someone's inbox.
pub const MAX_MAILS: u32 = 3;
/// The window [`MAX_MAILS`] counts in.
pub const MAIL_WINDOW: Duration = Duration::hours(24);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignupState {
    /// Asked on the web; gets nothing until they confirm.
    Pending,
    /// Confirmed with the link we mailed them: a reader like those in the file.
    Confirmed,
}

impl SignupState {
    pub fn as_str(self) -> &'static str {
        match self {
            SignupState::Pending => "pending",
            SignupState::Confirmed => "confirmed",
        }
    }
}

/// One step of consent: when, and from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub at: DateTime<Utc>,
    pub ip: Option<String>,
    pub agent: Option<String>,
}

/// A web sign-up as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signup {
    pub email: AddressKey,
    /// As the reader typed it.
    pub address: String,
    pub name: Option<String>,
    pub state: SignupState,
    pub requested: Consent,
    pub confirmed: Option<Consent>,
}

impl Signup {
    pub fn is_confirmed(&self) -> bool {
        self.state == SignupState::Confirmed
    }
}

/// A request from the form, as `serve` saw it.
#[derive(Debug, Clone)]
pub struct SignupRequest<'a> {
    pub email: &'a AddressKey,
    pub address: &'a str,
    pub name: Option<&'a str>,
    pub consent: Consent,
}

/// What confirming did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmation {
    /// Now a reader (again, if they had unsubscribed with their link before asking).
    Confirmed,
    /// They were confirmed already; nothing changed.
    AlreadyConfirmed,
    /// The editor (or a bounce or complaint) suppressed the address: the form never adds it.
    Suppressed,
    /// They unsubscribed with their link after this confirmation link was sent: the later
    /// word stands, and a new sign-up brings them back.
    UnsubscribedSince,
}

const COLUMNS: &str = "email, address, name, state, requested_at, request_ip, request_agent,
    confirmed_at, confirm_ip, confirm_agent";

impl Ledger {
    /// The address's sign-up, if it has one.
    pub fn signup(&self, email: &AddressKey) -> Result<Option<Signup>> {
        let mut statement = self
            .connection
            .prepare_cached(&format!("SELECT {COLUMNS} FROM signups WHERE email = ?1"))?;
        let mut rows = statement.query([email.as_str()])?;
        rows.next()?.map(signup_from_sql).transpose()
    }

    /// Every sign-up, the earliest request first.
    pub fn signups(&self) -> Result<Vec<Signup>> {
        let mut statement = self.connection.prepare(&format!(
            "SELECT {COLUMNS} FROM signups ORDER BY requested_at, email"
        ))?;
        let mut rows = statement.query([])?;
        let mut signups = Vec::new();
        while let Some(row) = rows.next()? {
            signups.push(signup_from_sql(row)?);
        }
        Ok(signups)
    }

    /// Up to `limit` confirmed sign-ups after `after` (by key), in key order: a page of the
    /// web's readers, so that a send never holds them all at once.
    pub fn confirmed_signups_after(
        &self,
        after: Option<&AddressKey>,
        limit: usize,
    ) -> Result<Vec<Signup>> {
        let mut statement = self.connection.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM signups WHERE state = 'confirmed' AND email > ?1
             ORDER BY email LIMIT ?2"
        ))?;
        let after = after.map_or("", AddressKey::as_str);
        let mut rows = statement.query(params![after, limit as i64])?;
        let mut signups = Vec::new();
        while let Some(row) = rows.next()? {
            signups.push(signup_from_sql(row)?);
        }
        Ok(signups)
    }

    /// Calls `each` with the key of every confirmed sign-up, without collecting them.
    pub fn each_confirmed_signup(&self, mut each: impl FnMut(&str)) -> Result<()> {
        let mut statement = self
            .connection
            .prepare_cached("SELECT email FROM signups WHERE state = 'confirmed'")?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            each(row.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?);
        }
        Ok(())
    }

    /// How many sign-ups are confirmed, and how many wait for their reader to confirm.
    pub fn signup_counts(&self) -> Result<(u64, u64)> {
        Ok(self.connection.query_row(
            "SELECT COALESCE(SUM(state = 'confirmed'), 0), COALESCE(SUM(state = 'pending'), 0)
             FROM signups",
            [],
            |row| Ok((row.get::<_, i64>(0)? as u64, row.get::<_, i64>(1)? as u64)),
        )?)
    }

    /// Confirmation emails sent to the address since `since`.
    pub fn signup_mails_since(&self, email: &AddressKey, since: DateTime<Utc>) -> Result<u32> {
        Ok(self.connection.query_row(
            "SELECT COUNT(*) FROM signup_mails WHERE email = ?1 AND sent_at > ?2",
            params![email.as_str(), timestamp(since)],
            |row| row.get(0),
        )?)
    }

    /// Records a request from the form and, unless the address had [`MAX_MAILS`]
    /// confirmation emails in the last [`MAIL_WINDOW`], that one more is being sent; returns
    /// whether to send it. One transaction, so two requests at once cannot both pass the
    /// limit. The request is the consent asked for: a confirmed sign-up asked again (after
    /// unsubscribing with their link) waits for its new confirmation.
    pub fn request_signup(&mut self, request: &SignupRequest, now: DateTime<Utc>) -> Result<bool> {
        let transaction = self
            .connection
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let email = request.email.as_str();
        let recent: u32 = transaction.query_row(
            "SELECT COUNT(*) FROM signup_mails WHERE email = ?1 AND sent_at > ?2",
            params![email, timestamp(now - MAIL_WINDOW)],
            |row| row.get(0),
        )?;
        if recent >= MAX_MAILS {
            return Ok(false);
        }
        let consent = &request.consent;
        transaction.execute(
            "INSERT INTO signups (email, address, name, state, requested_at, request_ip, request_agent)
             VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?6)
             ON CONFLICT (email) DO UPDATE SET address = ?2, name = COALESCE(?3, name),
                state = 'pending', requested_at = ?4, request_ip = ?5, request_agent = ?6,
                confirmed_at = NULL, confirm_ip = NULL, confirm_agent = NULL",
            params![
                email,
                request.address,
                request.name,
                timestamp(consent.at),
                consent.ip,
                consent.agent
            ],
        )?;
        transaction.execute(
            "INSERT INTO signup_mails (email, sent_at) VALUES (?1, ?2)",
            params![email, timestamp(now)],
        )?;
        transaction.commit()?;
        Ok(true)
    }

    /// Confirms the sign-up of `email` (its link, issued at `issued`, was followed), lifting
    /// the reader's own unsubscribe if they gave it before asking again. A suppression set by
    /// anyone else stays, and the address is not added. With no request on record (a ledger
    /// restored from before it), the link itself is the request: it names the address and
    /// when it was sent.
    pub fn confirm_signup(
        &mut self,
        email: &AddressKey,
        address: &str,
        issued: DateTime<Utc>,
        consent: &Consent,
    ) -> Result<Confirmation> {
        let suppression = self.suppression(email)?;
        let existing = self.signup(email)?;
        match &suppression {
            Some(suppression) if !suppression.is_own() => return Ok(Confirmation::Suppressed),
            Some(suppression) if suppression.created_at > issued => {
                return Ok(Confirmation::UnsubscribedSince);
            }
            None if existing.as_ref().is_some_and(Signup::is_confirmed) => {
                return Ok(Confirmation::AlreadyConfirmed);
            }
            _ => {}
        }
        let transaction = self
            .connection
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if suppression.is_some() {
            let lifted = transaction.execute(
                "DELETE FROM suppressions WHERE email = ?1 AND source = ?2",
                params![email.as_str(), Source::OneClick.as_str()],
            )?;
            if lifted == 1 {
                super::suppressions::log(
                    &transaction,
                    email,
                    "lifted",
                    &Source::OneClick,
                    Some("by the subscriber, confirming a new sign-up"),
                    consent.at,
                )?;
            }
        }
        transaction.execute(
            "INSERT INTO signups (email, address, state, requested_at, confirmed_at, confirm_ip, confirm_agent)
             VALUES (?1, ?2, 'confirmed', ?3, ?4, ?5, ?6)
             ON CONFLICT (email) DO UPDATE SET state = 'confirmed', confirmed_at = ?4,
                confirm_ip = ?5, confirm_agent = ?6",
            params![
                email.as_str(),
                address,
                timestamp(issued),
                timestamp(consent.at),
                consent.ip,
                consent.agent
            ],
        )?;
        transaction.commit()?;
        Ok(Confirmation::Confirmed)
    }
}

fn signup_from_sql(row: &rusqlite::Row) -> Result<Signup> {
    let state = parse_word(&row.get::<_, String>(3)?, "the sign-up state", |text| {
        [SignupState::Pending, SignupState::Confirmed]
            .into_iter()
            .find(|state| state.as_str() == text)
    })?;
    let confirmed_at: Option<String> = row.get(7)?;
    Ok(Signup {
        email: AddressKey::from_stored(row.get(0)?),
        address: row.get(1)?,
        name: row.get(2)?,
        state,
        requested: Consent {
            at: parse_timestamp(&row.get::<_, String>(4)?)?,
            ip: row.get(5)?,
            agent: row.get(6)?,
        },
        confirmed: match confirmed_at {
            Some(at) => Some(Consent {
                at: parse_timestamp(&at)?,
                ip: row.get(8)?,
                agent: row.get(9)?,
            }),
            None => None,
        },
    })
}

impl Ledger {
    /// Whether the address is a confirmed sign-up: the audience asks this of the file's
    /// readers whose key the sign-ups may hold.
    pub fn is_confirmed_signup(&self, email: &AddressKey) -> Result<bool> {
        Ok(self
            .connection
            .prepare_cached("SELECT 1 FROM signups WHERE email = ?1 AND state = 'confirmed'")?
            .query_row([email.as_str()], |_| Ok(()))
            .optional()?
            .is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{key, now, open};
    use super::*;

    fn consent(at: DateTime<Utc>) -> Consent {
        Consent {
            at,
            ip: Some("203.0.113.9".into()),
            agent: Some("Mozilla/5.0".into()),
        }
    }

    fn request<'a>(email: &'a AddressKey, at: DateTime<Utc>) -> SignupRequest<'a> {
        SignupRequest {
            email,
            address: email.as_str(),
            name: Some("Ada"),
            consent: consent(at),
        }
    }

    #[test]
    fn a_request_waits_for_its_confirmation_and_keeps_the_consent() {
        let (_dir, mut ledger) = open();
        let ada = key("ada@example.com");
        assert!(ledger.request_signup(&request(&ada, now()), now()).unwrap());
        let pending = ledger.signup(&ada).unwrap().unwrap();
        assert_eq!(pending.state, SignupState::Pending);
        assert_eq!(pending.requested.ip.as_deref(), Some("203.0.113.9"));
        assert!(!ledger.is_confirmed_signup(&ada).unwrap());
        let later = now() + Duration::minutes(5);
        let outcome = ledger
            .confirm_signup(&ada, "ada@example.com", now(), &consent(later))
            .unwrap();
        assert_eq!(outcome, Confirmation::Confirmed);
        let confirmed = ledger.signup(&ada).unwrap().unwrap();
        assert_eq!(confirmed.confirmed.unwrap().at, later);
        assert_eq!(confirmed.requested.at, now());
        assert_eq!(confirmed.name.as_deref(), Some("Ada"));
        assert!(ledger.is_confirmed_signup(&ada).unwrap());
        assert_eq!(
            ledger
                .confirm_signup(&ada, "ada@example.com", now(), &consent(later))
                .unwrap(),
            Confirmation::AlreadyConfirmed
        );
        assert_eq!(ledger.signup_counts().unwrap(), (1, 0));
        let mut keys = Vec::new();
        ledger
            .each_confirmed_signup(|key| keys.push(key.to_string()))
            .unwrap();
        assert_eq!(keys, ["ada@example.com"]);
    }

    #[test]
    fn at_most_three_mails_a_day_go_to_one_address() {
        let (_dir, mut ledger) = open();
        let ada = key("ada@example.com");
        let sent: Vec<bool> = (0..5)
            .map(|minutes| {
                let at = now() + Duration::minutes(minutes);
                ledger.request_signup(&request(&ada, at), at).unwrap()
            })
            .collect();
        assert_eq!(sent, [true, true, true, false, false]);
        let next_day = now() + Duration::hours(24) + Duration::minutes(1);
        assert!(
            ledger
                .request_signup(&request(&ada, next_day), next_day)
                .unwrap()
        );
        assert_eq!(
            ledger
                .signup_mails_since(&ada, now() - Duration::hours(1))
                .unwrap(),
            4
        );
    }

    #[test]
    fn confirming_lifts_only_an_earlier_unsubscribe_of_their_own() {
        let (_dir, mut ledger) = open();
        let (ada, bob, eve) = (
            key("ada@example.com"),
            key("bob@example.com"),
            key("eve@example.com"),
        );
        let later = now() + Duration::hours(1);
        ledger
            .suppress(&ada, &Source::OneClick, None, now())
            .unwrap();
        ledger.suppress(&bob, &Source::Manual, None, now()).unwrap();
        ledger
            .suppress(&eve, &Source::OneClick, None, later)
            .unwrap();
        let confirm = |ledger: &mut Ledger, email: &AddressKey| {
            ledger
                .confirm_signup(email, email.as_str(), now(), &consent(later))
                .unwrap()
        };
        assert_eq!(confirm(&mut ledger, &ada), Confirmation::Confirmed);
        assert_eq!(ledger.suppression(&ada).unwrap(), None);
        let history = ledger.suppression_history(&ada).unwrap();
        assert!(history[1].lifted);
        assert_eq!(confirm(&mut ledger, &bob), Confirmation::Suppressed);
        assert_eq!(confirm(&mut ledger, &eve), Confirmation::UnsubscribedSince);
        assert!(ledger.signup(&bob).unwrap().is_none());
        assert!(ledger.suppression(&eve).unwrap().is_some());
        // The link alone is a request when none is on record.
        let ada_signup = ledger.signup(&ada).unwrap().unwrap();
        assert_eq!(ada_signup.requested.at, now());
        assert_eq!(ada_signup.requested.ip, None);
    }

    #[test]
    fn a_new_request_after_a_confirmation_waits_for_the_new_one() {
        let (_dir, mut ledger) = open();
        let ada = key("ada@example.com");
        ledger
            .confirm_signup(&ada, "ada@example.com", now(), &consent(now()))
            .unwrap();
        let later = now() + Duration::days(2);
        assert!(ledger.request_signup(&request(&ada, later), later).unwrap());
        let signup = ledger.signup(&ada).unwrap().unwrap();
        assert_eq!(
            (signup.state, signup.confirmed),
            (SignupState::Pending, None)
        );
        let page = ledger.confirmed_signups_after(None, 10).unwrap();
        assert!(page.is_empty());
    }

    #[test]
    fn confirmed_signups_come_in_pages_in_key_order() {
        let (_dir, mut ledger) = open();
        for name in ["c", "a", "b", "d"] {
            let email = key(&format!("{name}@example.com"));
            ledger
                .confirm_signup(&email, email.as_str(), now(), &consent(now()))
                .unwrap();
        }
        let first = ledger.confirmed_signups_after(None, 3).unwrap();
        let keys: Vec<&str> = first.iter().map(|s| s.email.as_str()).collect();
        assert_eq!(keys, ["a@example.com", "b@example.com", "c@example.com"]);
        let rest = ledger
            .confirmed_signups_after(Some(&first[2].email), 3)
            .unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(ledger.signups().unwrap().len(), 4);
    }
}
