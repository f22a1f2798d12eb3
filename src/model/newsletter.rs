//! `newsletter.yaml`: who sends, from where, when, and how fast.

use std::path::PathBuf;
use std::str::FromStr;

use chrono::{NaiveTime, Weekday};
use chrono_tz::Tz;

use crate::bounce::verp::check_bounce_address;
use crate::decode::Decoder;
use crate::diagnostic::FieldPath;
use crate::message::dkim::{DkimConfig, Selector, SigningDomain};
use crate::model::address::{EmailAddress, Mailbox};
use crate::model::link::SiteUrl;
use crate::model::text::{Lines, OneLine};

pub use crate::model::slot::WeeklySlot;
use crate::yaml::Node;

#[derive(Debug, Clone, PartialEq)]
pub struct Newsletter {
    pub name: OneLine,
    /// A sentence on what the newsletter is, for the sign-up page.
    pub description: Option<OneLine>,
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    pub postal_address: Lines,
    pub site_url: Option<SiteUrl>,
    pub language: Language,
    /// As written, relative to the workspace.
    pub subscribers: PathBuf,
    pub theme: ThemeName,
    pub schedule: WeeklySlot,
    pub delivery: Delivery,
    pub test_recipients: Vec<EmailAddress>,
    /// `dkim:`: the keys every message is signed with; `None` signs nothing (and `check`
    /// says so).
    pub dkim: Option<DkimConfig>,
    /// `bounce_address:`: the envelope sender, with a VERP tag per message
    /// (`bounces+<tag>@example.com`); without it, the From address.
    pub bounce_address: Option<EmailAddress>,
    pub bounces: BouncePolicy,
}

impl Newsletter {
    /// The address replies and mailto unsubscribes go to.
    pub fn reply_address(&self) -> &EmailAddress {
        &self.reply_to.as_ref().unwrap_or(&self.from).address
    }
}

/// The default `schedule.grace`.
pub const DEFAULT_GRACE_HOURS: i64 = 6;

#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// SMTP connections kept busy at once.
    pub concurrency: u32,
    /// A ceiling on messages per second (a relay's quota); `None` for no ceiling.
    pub rate_per_second: Option<f64>,
    /// Attempts per recipient in one run before a transient failure is left deferred.
    pub max_attempts: u32,
    /// The longest the relay may take to answer: connecting, and each command.
    pub timeout_seconds: u32,
    /// The longest to wait for the relay's answer to a whole message (the final dot): it may
    /// be scanning it, and giving up early risks sending it twice. RFC 5321 4.5.3.2.6
    /// recommends 10 minutes.
    pub final_reply_seconds: u32,
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            concurrency: 4,
            rate_per_second: None,
            max_attempts: 5,
            timeout_seconds: 60,
            final_reply_seconds: 600,
        }
    }
}

/// `bounces:`: when bounces take a reader off the list. A hard bounce and a complaint always
/// do, at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BouncePolicy {
    /// Soft bounces in a row, over this many different issues, suppress the address.
    pub soft_limit: u32,
}

/// The default `bounces.soft_limit`: a full mailbox three weeks running is abandoned.
pub const DEFAULT_SOFT_LIMIT: u32 = 3;
/// The highest `bounces.soft_limit`: beyond a year of weekly issues it means "never".
pub const MAX_SOFT_LIMIT: u32 = 52;

impl Default for BouncePolicy {
    fn default() -> Self {
        BouncePolicy {
            soft_limit: DEFAULT_SOFT_LIMIT,
        }
    }
}

/// A BCP 47 language tag such as `en` or `pt-BR`, for the email's `lang` and `dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Language(String);

impl Language {
    pub fn parse(text: &str) -> Result<Self, String> {
        let valid = !text.is_empty()
            && text.len() <= 35
            && text
                .split('-')
                .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric()));
        if valid {
            Ok(Language(text.to_string()))
        } else {
            Err(format!(
                "`{text}` is not a language tag; write one like `en` or `pt-BR`"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Text direction, from the primary language (scripts written right to left).
    pub fn direction(&self) -> &'static str {
        let primary = self.0.split('-').next().unwrap_or_default();
        match primary.to_ascii_lowercase().as_str() {
            "ar" | "he" | "fa" | "ur" | "yi" | "ps" | "sd" | "ug" | "dv" | "ckb" => "rtl",
            _ => "ltr",
        }
    }
}

impl Default for Language {
    fn default() -> Self {
        Language("en".into())
    }
}

/// A theme's folder name under `templates/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThemeName(String);

impl ThemeName {
    pub fn parse(text: &str) -> Result<Self, String> {
        let valid = !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if valid {
            Ok(ThemeName(text.to_string()))
        } else {
            Err(format!(
                "`{text}` is not a theme name; use the name of a folder under templates/ (letters, digits, - and _)"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for ThemeName {
    fn default() -> Self {
        ThemeName("default".into())
    }
}

pub fn decode(decoder: &mut Decoder, root: &Node) -> Option<Newsletter> {
    let path = FieldPath::Root;
    let mut fields = decoder.fields(root, &path)?;
    let name = decoder.required_text(&mut fields, &path, "name", OneLine::parse);
    let description = decoder.optional_text(&mut fields, &path, "description", OneLine::parse);
    let from = decoder.required(&mut fields, &path, "from", Mailbox::parse);
    let reply_to = decoder.optional(&mut fields, &path, "reply_to", Mailbox::parse);
    let postal_address = decoder.required_text(&mut fields, &path, "postal_address", Lines::parse);
    let site_url_mark = fields.key_mark("site_url");
    let site_url = decoder.optional(&mut fields, &path, "site_url", SiteUrl::parse);
    if let (Ok(Some(site)), Some(mark)) = (&site_url, site_url_mark)
        && site.is_this_machine()
    {
        decoder.warning(
            mark,
            &path.key("site_url"),
            format!(
                "{} is this machine: its links (unsubscribe, archive, images) work only here; `send` through a relay refuses it, so set the public https:// address before the real send",
                site.as_str()
            ),
        );
    }
    let language = decoder.optional(&mut fields, &path, "language", Language::parse);
    let subscribers = decoder.optional(&mut fields, &path, "subscribers", parse_relative_path);
    let theme = decoder.optional(&mut fields, &path, "theme", ThemeName::parse);
    let schedule = fields
        .required(decoder, &path, "schedule")
        .and_then(|node| decode_schedule(decoder, node, &path.key("schedule")));
    let delivery = match fields.get("delivery") {
        None => Some(Delivery::default()),
        Some(node) => decode_delivery(decoder, node, &path.key("delivery")),
    };
    let test_recipients = match fields.get("test_recipients") {
        None => Some(Vec::new()),
        Some(node) => decode_addresses(decoder, node, &path.key("test_recipients")),
    };
    let dkim = match fields.get("dkim") {
        None => Some(None),
        Some(node) => decode_dkim(decoder, node, &path.key("dkim")).map(Some),
    };
    let bounce_address = decoder.optional(&mut fields, &path, "bounce_address", |text| {
        let address = EmailAddress::parse(text).map_err(|error| error.to_string())?;
        // The diagnostic names the field already; the check's own message names it too.
        check_bounce_address(&address).map_err(|error| {
            let message = error.to_string();
            message
                .strip_prefix("bounce_address: ")
                .unwrap_or(&message)
                .to_string()
        })?;
        Ok::<_, String>(address)
    });
    let bounces = match fields.get("bounces") {
        None => Some(BouncePolicy::default()),
        Some(node) => decode_bounces(decoder, node, &path.key("bounces")),
    };
    fields.finish(decoder, &path);
    Some(Newsletter {
        name: name?,
        description: description.ok()?,
        from: from?,
        reply_to: reply_to.ok()?,
        postal_address: postal_address?,
        site_url: site_url.ok()?,
        language: language.ok()?.unwrap_or_default(),
        subscribers: subscribers
            .ok()?
            .unwrap_or_else(|| PathBuf::from("subscribers.yaml")),
        theme: theme.ok()?.unwrap_or_default(),
        schedule: schedule?,
        delivery: delivery?,
        test_recipients: test_recipients?,
        dkim: dkim?,
        bounce_address: bounce_address.ok()?,
        bounces: bounces?,
    })
}

/// `dkim: { selector, ed25519_selector, domain }`: at least one selector, and two different
/// ones when both are given (each names its own DNS record).
fn decode_dkim(decoder: &mut Decoder, node: &Node, path: &FieldPath) -> Option<DkimConfig> {
    let mut fields = decoder.fields(node, path)?;
    let selector = decoder.optional(&mut fields, path, "selector", Selector::parse);
    let ed25519_selector = decoder.optional(&mut fields, path, "ed25519_selector", Selector::parse);
    let domain = decoder.optional(&mut fields, path, "domain", SigningDomain::parse);
    let mark = fields.mark();
    fields.finish(decoder, path);
    let (selector, ed25519_selector, domain) =
        (selector.ok()?, ed25519_selector.ok()?, domain.ok()?);
    match DkimConfig::new(selector, ed25519_selector, domain) {
        Ok(config) => Some(config),
        Err(error) => {
            decoder.error(mark, path, error);
            None
        }
    }
}

fn decode_bounces(decoder: &mut Decoder, node: &Node, path: &FieldPath) -> Option<BouncePolicy> {
    let mut fields = decoder.fields(node, path)?;
    let soft_limit = decoder.optional(&mut fields, path, "soft_limit", |text| {
        parse_whole_number(text, 1, MAX_SOFT_LIMIT)
    });
    fields.finish(decoder, path);
    Some(BouncePolicy {
        soft_limit: soft_limit.ok()?.unwrap_or(DEFAULT_SOFT_LIMIT),
    })
}

fn parse_relative_path(text: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(text.trim());
    if text.trim().is_empty() || text.contains(['\n', '\r', '\0']) {
        return Err(format!("`{text}` is not a file path"));
    }
    Ok(path)
}

fn decode_schedule(decoder: &mut Decoder, node: &Node, path: &FieldPath) -> Option<WeeklySlot> {
    let mut fields = decoder.fields(node, path)?;
    let day = decoder.required(&mut fields, path, "day", parse_weekday);
    let time = decoder.required(&mut fields, path, "time", parse_time);
    let timezone = decoder.required(&mut fields, path, "timezone", parse_timezone);
    let grace = decoder.optional(&mut fields, path, "grace", parse_grace);
    fields.finish(decoder, path);
    Some(WeeklySlot {
        day: day?,
        time: time?,
        timezone: timezone?,
        grace: grace
            .ok()?
            .unwrap_or(chrono::Duration::hours(DEFAULT_GRACE_HOURS)),
    })
}

fn decode_delivery(decoder: &mut Decoder, node: &Node, path: &FieldPath) -> Option<Delivery> {
    let defaults = Delivery::default();
    let mut fields = decoder.fields(node, path)?;
    let concurrency = decoder.optional(&mut fields, path, "concurrency", |text| {
        parse_whole_number(text, 1, MAX_CONCURRENCY)
    });
    let rate_per_second = decoder.optional(&mut fields, path, "rate_per_second", parse_rate);
    let max_attempts = decoder.optional(&mut fields, path, "max_attempts", |text| {
        parse_whole_number(text, 1, MAX_ATTEMPTS)
    });
    let timeout_seconds = decoder.optional(&mut fields, path, "timeout_seconds", |text| {
        parse_whole_number(text, 1, MAX_TIMEOUT_SECONDS)
    });
    let final_reply_seconds = decoder.optional(&mut fields, path, "final_reply_seconds", |text| {
        parse_whole_number(text, 1, MAX_TIMEOUT_SECONDS)
    });
    fields.finish(decoder, path);
    Some(Delivery {
        concurrency: concurrency.ok()?.unwrap_or(defaults.concurrency),
        rate_per_second: rate_per_second.ok()?,
        max_attempts: max_attempts.ok()?.unwrap_or(defaults.max_attempts),
        timeout_seconds: timeout_seconds.ok()?.unwrap_or(defaults.timeout_seconds),
        final_reply_seconds: final_reply_seconds
            .ok()?
            .unwrap_or(defaults.final_reply_seconds),
    })
}

pub fn decode_addresses(
    decoder: &mut Decoder,
    node: &Node,
    path: &FieldPath,
) -> Option<Vec<EmailAddress>> {
    let items = decoder.list(node, path)?;
    let mut addresses = Vec::with_capacity(items.len());
    let mut valid = true;
    for (index, item) in items.iter().enumerate() {
        match decoder.parse(item, &path.index(index), EmailAddress::parse) {
            Some(address) => addresses.push(address),
            None => valid = false,
        }
    }
    valid.then_some(addresses)
}

/// Also used by the decoders of other files, so every file spells these rules alike.
pub fn parse_whole_number(text: &str, min: u32, max: u32) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(number) if (min..=max).contains(&number) => Ok(number),
        Ok(number) => Err(format!("{number} is out of range; use {min} to {max}")),
        Err(_) => Err(format!("expected a whole number, found `{text}`")),
    }
}

/// The documented range of each delivery setting: beyond them a setting is a typo, and the
/// extremes would hang (a rate of 1e-9 waits years between messages) or panic.
pub const MAX_CONCURRENCY: u32 = 100;
pub const MAX_ATTEMPTS: u32 = 20;
/// An hour.
pub const MAX_TIMEOUT_SECONDS: u32 = 3600;
pub const MIN_RATE: f64 = 0.01;
pub const MAX_RATE: f64 = 100_000.0;

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if (MIN_RATE..=MAX_RATE).contains(&rate) => Ok(rate),
        Ok(rate) if rate.is_finite() => Err(format!(
            "{} messages a second is out of range; use {MIN_RATE} to {MAX_RATE}",
            text.trim()
        )),
        _ => Err(format!(
            "expected a number of messages per second ({MIN_RATE} to {MAX_RATE}), found `{text}`"
        )),
    }
}

pub fn parse_weekday(text: &str) -> Result<Weekday, String> {
    Weekday::from_str(text.trim())
        .map_err(|_| format!("`{text}` is not a day of the week; write one like `monday`"))
}

pub fn parse_time(text: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(text.trim(), "%H:%M")
        .map_err(|_| format!("`{text}` is not a time; write 24-hour `HH:MM`, like \"09:00\""))
}

/// A duration like `6h`, `90m` or `1h30m`, from no grace at all (`0`) up to a week.
pub fn parse_grace(text: &str) -> Result<chrono::Duration, String> {
    let invalid = || format!("`{text}` is not a duration; write one like `6h`, `90m` or `1h30m`");
    let too_long = || format!("`{text}` is more than a week; a slot that late is the next one");
    let text = text.trim();
    if text == "0" {
        return Ok(chrono::Duration::zero());
    }
    const WEEK_MINUTES: u64 = 7 * 24 * 60;
    // Counted in minutes with checked arithmetic: a number too big for any duration is
    // "more than a week", not an overflow.
    let mut minutes: u64 = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit: u64 = match c {
            'd' => 24 * 60,
            'h' => 60,
            'm' => 1,
            _ => return Err(invalid()),
        };
        if number.is_empty() {
            return Err(invalid());
        }
        let value: u64 = number.parse().map_err(|_| too_long())?;
        number.clear();
        minutes = value
            .checked_mul(unit)
            .and_then(|part| minutes.checked_add(part))
            .ok_or_else(too_long)?;
    }
    if !number.is_empty() || text.is_empty() {
        return Err(invalid());
    }
    if minutes > WEEK_MINUTES {
        return Err(too_long());
    }
    Ok(chrono::Duration::minutes(minutes as i64))
}

pub fn parse_timezone(text: &str) -> Result<Tz, String> {
    Tz::from_str(text.trim()).map_err(|_| {
        let names = chrono_tz::TZ_VARIANTS.iter().map(|zone| zone.name());
        match crate::decode::did_you_mean(text.trim(), names) {
            Some(name) => format!("`{text}` is not an IANA time zone; did you mean `{name}`?"),
            None => format!(
                "`{text}` is not an IANA time zone; write one like `Europe/Berlin` or `UTC`"
            ),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml;

    fn decode_text(source: &str) -> (Option<Newsletter>, Vec<String>) {
        let document = yaml::parse_document(source).unwrap();
        let mut decoder = Decoder::new("newsletter.yaml");
        decoder.set_comments(document.comments);
        let newsletter = decode(&mut decoder, &document.root);
        let messages = decoder
            .into_diagnostics()
            .iter()
            .map(ToString::to_string)
            .collect();
        (newsletter, messages)
    }

    const MINIMAL: &str = "name: Weekly\nfrom: Weekly <w@example.com>\npostal_address: 1 Street\nschedule:\n  day: monday\n  time: \"09:00\"\n  timezone: Europe/Berlin\n";

    #[test]
    fn a_minimal_newsletter_takes_the_documented_defaults() {
        let (newsletter, messages) = decode_text(MINIMAL);
        assert!(messages.is_empty(), "{messages:?}");
        let newsletter = newsletter.unwrap();
        assert_eq!(newsletter.subscribers, PathBuf::from("subscribers.yaml"));
        assert_eq!(newsletter.theme.as_str(), "default");
        assert_eq!(newsletter.language.as_str(), "en");
        assert_eq!(newsletter.delivery, Delivery::default());
        assert_eq!(newsletter.schedule.day, Weekday::Mon);
        assert_eq!(newsletter.reply_address().as_str(), "w@example.com");
    }

    #[test]
    fn every_bad_field_is_reported_in_one_pass() {
        let source = "name: Weekly\nfrom: not an address\npostal_address: 1 Street\nsite_url: http://weekly.example.com\nschedule:\n  day: someday\n  time: \"9am\"\n  timezone: Mars/Olympus\ndelivery:\n  concurrency: 0\n  rate_per_second: fast\ntest_recipients: [ok@example.com, nope]\n";
        let (newsletter, messages) = decode_text(source);
        assert!(newsletter.is_none());
        assert_eq!(
            messages,
            [
                "newsletter.yaml:2:7: from: `not an address` is not a valid email address",
                "newsletter.yaml:4:11: site_url: `http://weekly.example.com` must be an https URL (http:// only for localhost or 127.0.0.1, to try things out)",
                "newsletter.yaml:6:8: schedule.day: `someday` is not a day of the week; write one like `monday`",
                "newsletter.yaml:7:9: schedule.time: `9am` is not a time; write 24-hour `HH:MM`, like \"09:00\"",
                "newsletter.yaml:8:13: schedule.timezone: `Mars/Olympus` is not an IANA time zone; write one like `Europe/Berlin` or `UTC`",
                "newsletter.yaml:10:16: delivery.concurrency: 0 is out of range; use 1 to 100",
                "newsletter.yaml:11:20: delivery.rate_per_second: expected a number of messages per second (0.01 to 100000), found `fast`",
                "newsletter.yaml:12:35: test_recipients[1]: `nope` is not a valid email address",
            ]
        );
    }

    #[test]
    fn a_grace_too_big_for_any_duration_is_an_error_not_a_panic() {
        // Found by the `newsletter` fuzz target (chrono's "TimeDelta::minutes out of bounds"
        // in an earlier version of this function).
        for text in [
            "6h6000000000000000000m",
            "18446744073709551615m",
            "99999999999999999999999d",
        ] {
            assert!(
                parse_grace(text).unwrap_err().contains("more than a week"),
                "{text}"
            );
        }
    }

    #[test]
    fn grace_durations_read_like_people_write_them() {
        assert_eq!(parse_grace("6h"), Ok(chrono::Duration::hours(6)));
        assert_eq!(parse_grace("1h30m"), Ok(chrono::Duration::minutes(90)));
        assert_eq!(parse_grace("0"), Ok(chrono::Duration::zero()));
        assert!(parse_grace("6 hours").is_err());
        assert!(parse_grace("8d").is_err());
        assert!(parse_grace("h").is_err());
        assert_eq!(
            parse_grace("5124095576030431h"),
            Err("`5124095576030431h` is more than a week; a slot that late is the next one".into())
        );
        assert!(parse_grace("99999999999999999999999m").is_err());
    }

    #[test]
    fn every_delivery_number_has_a_range_and_extremes_are_refused() {
        let with = |delivery: &str| decode_text(&format!("{MINIMAL}delivery:\n{delivery}")).1;
        assert_eq!(
            with("  rate_per_second: 1e-300\n"),
            [
                "newsletter.yaml:9:20: delivery.rate_per_second: 1e-300 messages a second is out of range; use 0.01 to 100000"
            ]
        );
        assert!(with("  rate_per_second: 1e-9\n")[0].contains("out of range"));
        assert!(with("  rate_per_second: NaN\n")[0].contains("expected a number"));
        assert!(with("  rate_per_second: 0.01\n").is_empty());
        assert!(with("  concurrency: 101\n")[0].contains("use 1 to 100"));
        assert!(with("  max_attempts: 21\n")[0].contains("use 1 to 20"));
        assert!(with("  timeout_seconds: 3601\n")[0].contains("use 1 to 3600"));
        assert!(with("  final_reply_seconds: 0\n")[0].contains("use 1 to 3600"));
    }

    #[test]
    fn dkim_bounce_address_and_bounces_are_optional_and_checked() {
        let (newsletter, messages) = decode_text(MINIMAL);
        let newsletter = newsletter.unwrap();
        assert!(messages.is_empty());
        assert_eq!(
            (
                newsletter.dkim,
                newsletter.bounce_address,
                newsletter.bounces
            ),
            (None, None, BouncePolicy { soft_limit: 3 })
        );
        let source = format!(
            "{MINIMAL}dkim:\n  selector: lp2026\n  ed25519_selector: lp2026e\nbounce_address: bounces@example.com\nbounces:\n  soft_limit: 5\n"
        );
        let (newsletter, messages) = decode_text(&source);
        assert!(messages.is_empty(), "{messages:?}");
        let newsletter = newsletter.unwrap();
        let dkim = newsletter.dkim.unwrap();
        assert_eq!(dkim.selector.unwrap().as_str(), "lp2026");
        assert_eq!(dkim.ed25519_selector.unwrap().as_str(), "lp2026e");
        assert_eq!(dkim.domain, None);
        assert_eq!(
            newsletter.bounce_address.unwrap().as_str(),
            "bounces@example.com"
        );
        assert_eq!(newsletter.bounces.soft_limit, 5);
    }

    #[test]
    fn a_bad_dkim_block_or_bounce_setting_is_reported_where_it_is() {
        let long = "b".repeat(48);
        let source = format!(
            "{MINIMAL}dkim:\n  selector: ../key\n  domian: example.com\nbounce_address: {long}@example.com\nbounces:\n  soft_limit: 0\n"
        );
        let (newsletter, messages) = decode_text(&source);
        assert!(newsletter.is_none());
        assert_eq!(
            messages,
            [
                "newsletter.yaml:9:13: dkim.selector: `../key` is not a selector: use letters, digits and hyphens, in dot-separated parts (like `lp2026`)",
                "newsletter.yaml:10:3: dkim.domian: unknown field; did you mean `domain`?",
                "newsletter.yaml:11:17: bounce_address: the part before @ of `bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb@example.com` is 48 characters long; with `+` and a 16-character tag it must stay within 64, so use at most 47 (for example bounces@example.com)",
                "newsletter.yaml:13:15: bounces.soft_limit: 0 is out of range; use 1 to 52",
            ]
        );
        let (_, messages) = decode_text(&format!("{MINIMAL}dkim:\n  domain: example.com\n"));
        assert_eq!(
            messages,
            [
                "newsletter.yaml:9:3: dkim: no selector: set `selector` (an RSA key), `ed25519_selector` (an Ed25519 key), or both"
            ]
        );
    }

    #[test]
    fn right_to_left_languages_set_the_direction() {
        assert_eq!(Language::parse("ar-EG").unwrap().direction(), "rtl");
        assert_eq!(Language::parse("pt-BR").unwrap().direction(), "ltr");
        assert!(Language::parse("en_US").is_err());
    }

    #[test]
    fn a_misspelt_time_zone_gets_a_suggestion() {
        assert_eq!(
            parse_timezone("Asia/Shangai").unwrap_err(),
            "`Asia/Shangai` is not an IANA time zone; did you mean `Asia/Shanghai`?"
        );
        assert_eq!(
            parse_timezone("america/new york").unwrap_err(),
            "`america/new york` is not an IANA time zone; did you mean `America/New_York`?"
        );
        assert_eq!(
            parse_timezone("Mars/Olympus").unwrap_err(),
            "`Mars/Olympus` is not an IANA time zone; write one like `Europe/Berlin` or `UTC`"
        );
    }

    #[test]
    fn the_name_warns_about_a_comment_but_not_the_settings_around_it() {
        let source = MINIMAL.replace("name: Weekly", "name: Deep Signal #2")
            + "delivery:\n  concurrency: 2 # two\n";
        let (newsletter, messages) = decode_text(&source);
        assert_eq!(newsletter.unwrap().name.as_str(), "Deep Signal");
        assert_eq!(
            messages,
            [
                "newsletter.yaml:1:19: warning: name: the rest of the line after ` #` is a YAML comment; put the value in quotes"
            ]
        );
    }
}
