//! DKIM tests. What we sign is judged by verifiers that are not ours: dkimpy (Debian's
//! `python3-dkim`, with `python3-nacl` for Ed25519) and OpenDKIM (`opendkim`). Without them a
//! test says so and passes, except under CI (`CI` set), where their absence is a failure.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;
use crate::edition::Edition;
use crate::message::{Kind, Recipient};
use crate::model::address::Mailbox;
use crate::model::link::SiteUrl;
use crate::model::text::OneLine;
use crate::secret::Secret;
use crate::workspace::Workspace;

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/dkim")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn rsa_key() -> PrivateKey {
    PrivateKey::from_pem(&fixture("rsa2048.pkcs8.pem")).unwrap()
}

fn ed25519_key() -> PrivateKey {
    PrivateKey::from_pem(&fixture("ed25519.pem")).unwrap()
}

fn selector(text: &str) -> Selector {
    Selector::parse(text).unwrap()
}

fn domain(text: &str) -> SigningDomain {
    SigningDomain::parse(text).unwrap()
}

fn address(text: &str) -> EmailAddress {
    EmailAddress::parse(text).unwrap()
}

/// How the test message differs from the example issue's.
#[derive(Clone, Copy)]
struct Variant {
    reply_to: bool,
    site: bool,
}

/// A real message of the example issue, built as `send` builds it, with non-ASCII in the
/// From name, the Subject, the List-Id phrase and the To name (RFC 2047 words, folded), and
/// with a site, a List-Unsubscribe folded over two lines.
fn message(variant: Variant) -> Vec<u8> {
    let workspace = Workspace::new(env!("CARGO_MANIFEST_DIR"));
    let mut edition = Edition::load(&workspace, "2021-08-23")
        .unwrap_or_else(|error| panic!("the example does not load: {}", error.first_problem()))
        .value;
    let newsletter = &mut edition.newsletter;
    newsletter.name = OneLine::parse("Hebdo IA — l’édition du lundi").unwrap();
    newsletter.from = Mailbox {
        name: Some(OneLine::parse("Rédaction de l’Hebdo IA").unwrap()),
        address: address("weekly@example.com"),
    };
    if !variant.reply_to {
        newsletter.reply_to = None;
    }
    newsletter.site_url = if variant.site {
        Some(SiteUrl::parse("https://weekly.example.com").unwrap())
    } else {
        None
    };
    edition.issue.subject = OneLine::parse(
        "Hebdo IA nº 1 : modèles de fondation, l’API Codex et le supercalculateur Dojo de Tesla — à lire",
    )
    .unwrap();
    let template = edition.message_template(Kind::Issue).unwrap();
    let secret = Secret::from_passphrase("a test secret that is certainly long enough").unwrap();
    let mut out = Vec::new();
    template.write(
        Recipient {
            email: &address("zoe.angstrom@example.org"),
            name: Some("Zoë Ångström-Łukasiewicz"),
        },
        &secret,
        "Mon, 23 Aug 2021 09:00:00 -0400",
        &mut out,
    );
    out
}

const FULL: Variant = Variant {
    reply_to: true,
    site: true,
};
const BARE: Variant = Variant {
    reply_to: false,
    site: false,
};

fn signer(keys: Vec<(&str, PrivateKey)>) -> DkimSigner {
    DkimSigner::new(
        domain("example.com"),
        keys.into_iter()
            .map(|(name, key)| (selector(name), key))
            .collect(),
    )
}

fn signed(signer: &DkimSigner, variant: Variant) -> Vec<u8> {
    let mut message = message(variant);
    signer.prepend_signatures(&mut message).unwrap();
    message
}

/// The value of each `DKIM-Signature` field, unfolded.
fn signature_fields(message: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(message);
    let head = text
        .split("\r\n\r\n")
        .next()
        .unwrap()
        .replace("\r\n\t", " ");
    head.split("\r\n")
        .filter_map(|line| line.strip_prefix("DKIM-Signature: "))
        .map(str::to_string)
        .collect()
}

fn tag<'a>(field: &'a str, name: &str) -> &'a str {
    field
        .split(';')
        .map(str::trim)
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {name}= in {field}"))
}

fn signed_names(field: &str) -> Vec<String> {
    tag(field, "h")
        .split(':')
        .map(|name| name.trim().to_ascii_lowercase())
        .collect()
}

/// Replaces the first `from` after `after` with `to`, of the same length.
fn tamper(message: &[u8], after: &str, from: &str, to: &str) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let text = String::from_utf8(message.to_vec()).unwrap();
    let start = text.find(after).unwrap_or_else(|| panic!("no {after:?}"));
    let at = start
        + text[start..]
            .find(from)
            .unwrap_or_else(|| panic!("no {from:?}"));
    let mut out = message.to_vec();
    out[at..at + from.len()].copy_from_slice(to.as_bytes());
    out
}

// --- keys ---

#[test]
fn pkcs1_and_pkcs8_forms_of_one_rsa_key_publish_the_same_record() {
    let pkcs1 = PrivateKey::from_pem(&fixture("rsa2048.pkcs1.pem")).unwrap();
    let pkcs8 = rsa_key();
    assert_eq!(pkcs1.algorithm(), Algorithm::Rsa);
    assert_eq!(pkcs1.record_value(), pkcs8.record_value());
    // SubjectPublicKeyInfo, as OpenDKIM expects it: the DER starts `30 82 01 22 30 0d 06 09`.
    assert!(
        pkcs8
            .record_value()
            .starts_with("v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA")
    );
}

#[test]
fn an_ed25519_key_as_openssl_writes_it_loads_and_publishes_its_raw_public_key() {
    let key = ed25519_key();
    assert_eq!(key.algorithm(), Algorithm::Ed25519);
    let value = key.record_value();
    let p = value.strip_prefix("v=DKIM1; k=ed25519; p=").unwrap();
    assert_eq!(STANDARD.decode(p).unwrap().len(), 32);
}

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

#[test]
fn unusable_keys_are_refused_with_the_reason() {
    let cases = [
        ("rsa1024.pem", KeyError::RsaTooShort),
        ("ec-p256.pem", KeyError::EllipticCurve),
        ("ec-p256.sec1.pem", KeyError::EllipticCurve),
        ("ed25519.encrypted.pem", KeyError::Encrypted),
    ];
    for (file, expected) in cases {
        assert_eq!(
            PrivateKey::from_pem(&fixture(file)).unwrap_err(),
            expected,
            "{file}"
        );
    }
    assert_eq!(
        PrivateKey::from_pem("not a key").unwrap_err(),
        KeyError::NotPem
    );
    let damaged = fixture("rsa2048.pkcs8.pem").replace("MII", "MIA");
    assert!(matches!(
        PrivateKey::from_pem(&damaged),
        Err(KeyError::NotPem | KeyError::Damaged { .. } | KeyError::OtherAlgorithm)
    ));
}

#[test]
fn keys_never_show_in_debug_output() {
    assert_eq!(
        format!("{:?}", rsa_key()),
        "PrivateKey(rsa-sha256, <redacted>)"
    );
    let new = keygen(
        Algorithm::Ed25519,
        &selector("lp2026e"),
        &domain("example.com"),
    )
    .unwrap();
    assert!(!format!("{new:?}").contains("PRIVATE"));
    let signer = signer(vec![("lp2026", rsa_key())]);
    assert!(!format!("{signer:?}").contains("PRIVATE"));
}

#[test]
fn keygen_makes_an_ed25519_key_that_loads_and_a_one_string_record() {
    let new = keygen(
        Algorithm::Ed25519,
        &selector("lp2026e"),
        &domain("example.com"),
    )
    .unwrap();
    assert!(new.pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    let key = PrivateKey::from_pem(&new.pem).unwrap();
    assert_eq!(key.algorithm(), Algorithm::Ed25519);
    assert_eq!(new.dns.name, "lp2026e._domainkey.example.com");
    assert_eq!(new.dns.value, key.record_value());
    assert_eq!(new.dns.strings().len(), 1);
    assert_eq!(
        new.dns.zone_file(),
        format!(
            "lp2026e._domainkey.example.com. IN TXT ( \"{}\" )",
            new.dns.value
        )
    );
}

#[test]
fn a_private_key_is_written_for_its_owner_only_and_never_over_another() {
    let dir = tempfile::tempdir().unwrap();
    let path = default_key_path(&dir.path().join(".letterpress"), &selector("lp2026"));
    write_private_key(&path, "first").unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "first");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
    }
    let error = write_private_key(&path, "second").unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::AlreadyExists);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "first");
}

// --- settings ---

#[test]
fn selectors_and_domains_are_dns_names() {
    assert!(Selector::parse("lp2026").is_ok());
    assert!(Selector::parse("news.2026-a").is_ok());
    for bad in ["", "../etc", "a/b", "a..b", "-a", "a b", "sélecteur", "a_b"] {
        assert!(Selector::parse(bad).is_err(), "{bad:?} was accepted");
    }
    assert_eq!(domain("Mail.Example.COM.").as_str(), "mail.example.com");
    assert!(matches!(
        SigningDomain::parse("localhost"),
        Err(DkimError::Domain(_))
    ));
    assert!(matches!(
        SigningDomain::parse("bücher.example"),
        Err(DkimError::DomainNotAscii(_))
    ));
    assert_eq!(
        SigningDomain::parse("exa mple.com")
            .unwrap_err()
            .to_string(),
        "`exa mple.com` is not a domain name: write it in full, like `example.com`"
    );
}

#[test]
fn a_domain_is_aligned_with_itself_its_subdomains_and_its_parents() {
    assert!(domain("example.com").is_aligned_with("example.com"));
    assert!(domain("example.com").is_aligned_with("News.Example.com"));
    assert!(domain("mail.example.com").is_aligned_with("example.com"));
    assert!(!domain("example.com").is_aligned_with("badexample.com"));
    assert!(!domain("example.org").is_aligned_with("example.com"));
    // Siblings are aligned for DMARC, but this rule does not know organisational domains.
    assert!(!domain("news.example.com").is_aligned_with("mail.example.com"));
}

#[test]
fn a_configuration_needs_a_selector_and_two_different_ones() {
    assert!(matches!(
        DkimConfig::new(None, None, None),
        Err(DkimError::NoSelector)
    ));
    assert!(matches!(
        DkimConfig::new(Some(selector("lp")), Some(selector("LP")), None),
        Err(DkimError::SameSelector(_))
    ));
    let config = DkimConfig::new(None, Some(selector("lp-ed")), None).unwrap();
    assert_eq!(
        config
            .signing_domain(&address("weekly@News.Example.com"))
            .unwrap()
            .as_str(),
        "news.example.com"
    );
}

#[test]
fn keys_come_from_the_state_folder_unless_the_environment_names_a_file() {
    let config = DkimConfig::new(Some(selector("lp")), Some(selector("lp-ed")), None).unwrap();
    let state = Path::new("/srv/news/.letterpress");
    let files = config.key_files(&KeyEnv::default(), state);
    assert_eq!(
        files
            .iter()
            .map(|file| (file.algorithm, file.path.clone(), file.from_env))
            .collect::<Vec<_>>(),
        vec![
            (Algorithm::Rsa, state.join("dkim/lp.pem"), None),
            (Algorithm::Ed25519, state.join("dkim/lp-ed.pem"), None),
        ]
    );
    let env = KeyEnv {
        key: Some(PathBuf::from("/etc/letterpress/rsa.pem")),
        ed25519_key: Some(PathBuf::new()),
    };
    let files = config.key_files(&env, state);
    assert_eq!(files[0].path, Path::new("/etc/letterpress/rsa.pem"));
    assert_eq!(
        files[0].shown(),
        "/etc/letterpress/rsa.pem (from LETTERPRESS_DKIM_KEY)"
    );
    // An empty variable counts as unset.
    assert_eq!(files[1].path, state.join("dkim/lp-ed.pem"));
}

#[test]
fn check_reports_every_problem_and_the_records_to_publish() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    let from = address("weekly@example.com");
    let config = DkimConfig::new(
        Some(selector("lp")),
        Some(selector("lp-ed")),
        Some(domain("example.org")),
    )
    .unwrap();
    // Nothing there yet: both keys missing, and the domain is not aligned.
    let report = check(&config, &from, &KeyEnv::default(), state);
    assert!(!report.is_ok());
    let errors: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        errors,
        vec![
            format!(
                "no DKIM key for selector `lp`: `{}` does not exist; make one with `letterpress dkim keygen --selector lp`",
                state.join("dkim/lp.pem").display()
            ),
            format!(
                "no DKIM key for selector `lp-ed`: `{}` does not exist; make one with `letterpress dkim keygen --selector lp-ed`",
                state.join("dkim/lp-ed.pem").display()
            ),
        ]
    );
    assert_eq!(
        report.warnings,
        vec![DkimWarning::NotAligned {
            signing: "example.org".into(),
            from: "example.com".into()
        }]
    );

    // The Ed25519 key under the RSA selector, and the other way round.
    write_private_key(&state.join("dkim/lp.pem"), &fixture("ed25519.pem")).unwrap();
    write_private_key(&state.join("dkim/lp-ed.pem"), &fixture("rsa2048.pkcs1.pem")).unwrap();
    let report = check(&config, &from, &KeyEnv::default(), state);
    let errors: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        errors[0],
        format!(
            "the DKIM key `{}` is an ed25519-sha256 key, but `selector` names an rsa-sha256 key; name this key under `ed25519_selector` instead, or give `selector` an RSA key",
            state.join("dkim/lp.pem").display()
        )
    );
    assert_eq!(errors.len(), 2);

    // Right keys, aligned domain, one key readable by others.
    let config = DkimConfig::new(Some(selector("lp")), Some(selector("lp-ed")), None).unwrap();
    let env = KeyEnv {
        key: Some(state.join("rsa.pem")),
        ed25519_key: Some(state.join("ed.pem")),
    };
    std::fs::write(state.join("rsa.pem"), fixture("rsa2048.pkcs8.pem")).unwrap();
    write_private_key(&state.join("ed.pem"), &fixture("ed25519.pem")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            state.join("rsa.pem"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
    }
    let report = check(&config, &from, &env, state);
    assert!(report.is_ok(), "{:?}", report.errors);
    let names: Vec<&str> = report
        .keys
        .iter()
        .map(|(_, record)| record.as_ref().unwrap().name.as_str())
        .collect();
    assert_eq!(
        names,
        ["lp._domainkey.example.com", "lp-ed._domainkey.example.com"]
    );
    #[cfg(unix)]
    assert_eq!(
        report.warnings,
        vec![DkimWarning::KeyReadableByOthers {
            path: format!(
                "{} (from LETTERPRESS_DKIM_KEY)",
                state.join("rsa.pem").display()
            ),
            mode: 0o644
        }]
    );
}

#[test]
fn an_ed25519_only_configuration_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    write_private_key(&dir.path().join("dkim/ed.pem"), &fixture("ed25519.pem")).unwrap();
    let config = DkimConfig::new(None, Some(selector("ed")), None).unwrap();
    let report = check(
        &config,
        &address("weekly@example.com"),
        &KeyEnv::default(),
        dir.path(),
    );
    assert!(report.is_ok());
    assert_eq!(report.warnings, vec![DkimWarning::Ed25519Only]);
}

#[test]
fn load_reads_the_configured_keys() {
    let dir = tempfile::tempdir().unwrap();
    write_private_key(
        &dir.path().join("dkim/lp.pem"),
        &fixture("rsa2048.pkcs1.pem"),
    )
    .unwrap();
    write_private_key(&dir.path().join("dkim/ed.pem"), &fixture("ed25519.pem")).unwrap();
    let config = DkimConfig::new(Some(selector("lp")), Some(selector("ed")), None).unwrap();
    let signer = DkimSigner::load(
        &config,
        &address("weekly@Example.com"),
        &KeyEnv::default(),
        dir.path(),
    )
    .unwrap();
    assert_eq!(signer.domain().as_str(), "example.com");
    assert_eq!(
        signer.algorithms().collect::<Vec<_>>(),
        [Algorithm::Rsa, Algorithm::Ed25519]
    );
    let config = DkimConfig::new(Some(selector("missing")), None, None).unwrap();
    assert!(matches!(
        DkimSigner::load(
            &config,
            &address("weekly@example.com"),
            &KeyEnv::default(),
            dir.path()
        ),
        Err(DkimError::MissingKey { .. })
    ));
}

// --- signatures ---

#[test]
fn a_signature_is_relaxed_rsa_sha256_over_every_header_that_matters_with_from_oversigned() {
    let message = signed(&signer(vec![("lp2026", rsa_key())]), FULL);
    let fields = signature_fields(&message);
    assert_eq!(fields.len(), 1);
    let field = &fields[0];
    assert_eq!(tag(field, "v"), "1");
    assert_eq!(tag(field, "a"), "rsa-sha256");
    assert_eq!(tag(field, "c"), "relaxed/relaxed");
    assert_eq!(tag(field, "d"), "example.com");
    assert_eq!(tag(field, "s"), "lp2026");
    assert!(tag(field, "t").parse::<u64>().unwrap() > 1_600_000_000);
    let names = signed_names(field);
    for name in [
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "content-type",
        "reply-to",
        "list-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
    ] {
        // Each occurs once, and is listed once more: a copy cannot be added.
        let count = names.iter().filter(|signed| *signed == name).count();
        assert_eq!(count, 2, "{name} in {names:?}");
    }
    assert!(!names.contains(&"dkim-signature".to_string()));
    // The message itself follows unchanged (Date and Message-ID are fixed, so two builds are
    // byte-identical).
    assert!(message.ends_with(&self::message(FULL)));
}

#[test]
fn absent_headers_are_signed_as_absent() {
    let message = signed(&signer(vec![("lp2026", rsa_key())]), BARE);
    let head = String::from_utf8_lossy(&message[..message.len().min(4096)]).to_lowercase();
    assert!(!head.contains("\r\nreply-to:"));
    assert!(!head.contains("\r\nlist-unsubscribe-post:"));
    let names = signed_names(&signature_fields(&message)[0]);
    assert!(names.contains(&"reply-to".to_string()), "{names:?}");
    assert!(
        names.contains(&"list-unsubscribe-post".to_string()),
        "{names:?}"
    );
}

#[test]
fn with_both_keys_the_rsa_signature_comes_first_then_the_ed25519_one() {
    let message = signed(
        &signer(vec![("lp-ed", ed25519_key()), ("lp", rsa_key())]),
        FULL,
    );
    let fields = signature_fields(&message);
    assert_eq!(fields.len(), 2);
    assert_eq!(
        (tag(&fields[0], "a"), tag(&fields[0], "s")),
        ("rsa-sha256", "lp")
    );
    assert_eq!(
        (tag(&fields[1], "a"), tag(&fields[1], "s")),
        ("ed25519-sha256", "lp-ed")
    );
    // One canonical body, so one body hash.
    assert_eq!(tag(&fields[0], "bh"), tag(&fields[1], "bh"));
}

#[test]
fn one_signer_can_be_shared_by_every_send_task() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<DkimSigner>();
}

#[test]
fn signature_fields_are_folded_ascii_lines() {
    let message = signed(
        &signer(vec![("lp", rsa_key()), ("lp-ed", ed25519_key())]),
        FULL,
    );
    let text = String::from_utf8(message).unwrap();
    let head = text.split("\r\n\r\n").next().unwrap();
    // RFC 5322 caps a line at 998 characters; mail-auth folds at 76 except for the first line,
    // which holds the short tags up to `c=` unfolded (a SHOULD of 78, exceeded by a few).
    let signatures = head
        .split("\r\n")
        .take_while(|line| line.starts_with("DKIM-Signature: ") || line.starts_with('\t'));
    let mut count = 0;
    for line in signatures {
        assert!(line.is_ascii() && line.len() <= 120, "{line:?}");
        count += 1;
    }
    assert!(count > 8, "{head}");
}

// --- verified by others ---

/// dkimpy verifies each signature of each message named on the command line, with the records
/// given in JSON as the only DNS, and prints a line a message, a word a signature: `pass`;
/// `fail` (the headers' signature does not verify); `fail:body` (the body does not match its
/// hash); or `error:` and why. One process for many messages: Python takes a while to start.
const DKIMPY: &str = r#"
import json, sys
import dkim
records = json.loads(sys.argv[1])
def dns(name, timeout=5):
    value = records.get(name.decode().rstrip('.'))
    return value.encode() if value is not None else None
for path in sys.argv[2:]:
    d = dkim.DKIM(open(path, 'rb').read())
    count = sum(1 for name, _ in d.headers if name.lower() == b'dkim-signature')
    verdicts = []
    for index in range(count):
        try:
            verdicts.append('pass' if d.verify(idx=index, dnsfunc=dns) else 'fail')
        except dkim.ValidationError as error:
            # dkimpy raises for a body that does not match bh=, and returns False for a b=
            # that does not verify.
            body = 'body hash mismatch' in str(error)
            verdicts.append('fail:body' if body else 'error:' + str(error))
        except Exception as error:
            verdicts.append('error:' + type(error).__name__ + ':' + str(error))
    print(' '.join(verdicts))
"#;

/// A Python with dkimpy and PyNaCl (for Ed25519), or why there is none.
fn dkimpy() -> Result<&'static str, String> {
    static FOUND: std::sync::OnceLock<Option<&'static str>> = std::sync::OnceLock::new();
    let found = FOUND.get_or_init(|| {
        ["/usr/bin/python3", "python3"].into_iter().find(|python| {
            Command::new(python)
                .args(["-c", "import dkim, nacl"])
                .output()
                .is_ok_and(|output| output.status.success())
        })
    });
    found.ok_or_else(|| {
        "dkimpy is not installed (apt-get install python3-dkim python3-nacl)".to_string()
    })
}

/// The verifier, or `None` after saying why the test is skipped; under CI its absence fails.
fn require<T>(verifier: Result<T, String>) -> Option<T> {
    match verifier {
        Ok(found) => Some(found),
        Err(why) if std::env::var_os("CI").is_some() => panic!("CI needs it: {why}"),
        Err(why) => {
            eprintln!("skipped: {why}");
            None
        }
    }
}

/// dkimpy's verdicts on `messages`, a line each.
fn dkimpy_verdicts(python: &str, messages: &[&[u8]], records: &[DnsRecord]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<PathBuf> = messages
        .iter()
        .enumerate()
        .map(|(index, message)| {
            let path = dir.path().join(format!("{index}.eml"));
            std::fs::write(&path, message).unwrap();
            path
        })
        .collect();
    let records: serde_json::Map<String, serde_json::Value> = records
        .iter()
        .map(|record| (record.name.clone(), record.value.clone().into()))
        .collect();
    let output = Command::new(python)
        .args(["-c", DKIMPY])
        .arg(serde_json::Value::Object(records).to_string())
        .args(&paths)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "dkimpy: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn dkimpy_passes_our_rsa_and_ed25519_signatures() {
    let Some(python) = require(dkimpy()) else {
        return;
    };
    let rsa = signer(vec![("lp", rsa_key())]);
    let ed25519 = signer(vec![("lp-ed", ed25519_key())]);
    let both = signer(vec![("lp", rsa_key()), ("lp-ed", ed25519_key())]);
    let records = both.dns_records();
    for variant in [FULL, BARE] {
        let messages = [
            signed(&rsa, variant),
            signed(&ed25519, variant),
            signed(&both, variant),
        ];
        let messages: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        assert_eq!(
            dkimpy_verdicts(python, &messages, records),
            ["pass", "pass", "pass pass"]
        );
    }
}

#[test]
fn keygen_makes_a_2048_bit_rsa_key_that_dkimpy_verifies_with_the_record_it_prints() {
    let new = keygen(Algorithm::Rsa, &selector("lp2026"), &domain("example.com")).unwrap();
    let key = PrivateKey::from_pem(&new.pem).unwrap();
    assert_eq!(key.algorithm(), Algorithm::Rsa);
    assert!(new.pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    // 2048 bits: a 294-byte SubjectPublicKeyInfo, 392 base64 characters, in two TXT strings.
    let p = new.dns.value.strip_prefix("v=DKIM1; k=rsa; p=").unwrap();
    assert_eq!(p.len(), 392);
    let strings = new.dns.strings();
    assert_eq!(strings.len(), 2);
    assert_eq!(strings[0].len(), 255);
    assert_eq!(strings.concat(), new.dns.value);
    assert_eq!(
        new.dns.zone_file(),
        format!(
            "lp2026._domainkey.example.com. IN TXT ( \"{}\"\n    \"{}\" )",
            strings[0], strings[1]
        )
    );
    assert_eq!(
        new.dns.to_string(),
        format!("lp2026._domainkey.example.com TXT {}", new.dns.value)
    );

    let Some(python) = require(dkimpy()) else {
        return;
    };
    let ed25519 = keygen(
        Algorithm::Ed25519,
        &selector("lp2026e"),
        &domain("example.com"),
    )
    .unwrap();
    let signer = signer(vec![
        ("lp2026", key),
        ("lp2026e", PrivateKey::from_pem(&ed25519.pem).unwrap()),
    ]);
    // The records as DNS serves them from the zone file: the strings joined.
    let records = [new.dns, ed25519.dns].map(|record| DnsRecord {
        value: record.strings().concat(),
        ..record
    });
    assert_eq!(
        dkimpy_verdicts(python, &[&signed(&signer, FULL)], &records),
        ["pass pass"]
    );
}

#[test]
fn dkimpy_fails_a_message_altered_by_one_byte() {
    let Some(python) = require(dkimpy()) else {
        return;
    };
    let both = signer(vec![("lp", rsa_key()), ("lp-ed", ed25519_key())]);
    let message = signed(&both, FULL);
    let messages = [
        message.clone(),
        // One byte of the body: a letter of the HTML part, then one of the text part.
        tamper(
            &message,
            "Content-Type: text/html",
            "Foundation",
            "Foundatiom",
        ),
        tamper(
            &message,
            "Content-Type: text/plain",
            "Foundation",
            "Foundatiom",
        ),
        // One byte of a signed header.
        tamper(&message, "\r\nSubject:", "?b?", "?B?"),
        tamper(
            &message,
            "\r\nList-Unsubscribe:",
            "https://weekly",
            "https://weeklz",
        ),
        tamper(&message, "\r\nTo:", "zoe.", "zoa."),
    ];
    let messages: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    assert_eq!(
        dkimpy_verdicts(python, &messages, both.dns_records()),
        [
            "pass pass",
            "fail:body fail:body",
            "fail:body fail:body",
            "fail fail",
            "fail fail",
            "fail fail"
        ]
    );
}

#[test]
fn dkimpy_fails_a_message_given_a_second_from_or_an_absent_header() {
    let Some(python) = require(dkimpy()) else {
        return;
    };
    let both = signer(vec![("lp", rsa_key()), ("lp-ed", ed25519_key())]);
    let text = String::from_utf8(signed(&both, BARE)).unwrap();
    let body_at = text.find("\r\n\r\n").unwrap();
    let added = |header: &str| format!("{}\r\n{header}{}", &text[..body_at], &text[body_at..]);
    let messages = [
        added("From: Someone Else <ceo@example.com>"),
        added("Reply-To: thief@example.net"),
        added("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
        // A header we do not sign may be added on the way, as relays do.
        added("Received: by relay.example.net"),
    ];
    let messages: Vec<&[u8]> = messages.iter().map(String::as_bytes).collect();
    assert_eq!(
        dkimpy_verdicts(python, &messages, both.dns_records()),
        ["fail fail", "fail fail", "fail fail", "pass pass"]
    );
}

/// OpenDKIM's daemon binary (its test mode, `-t`, verifies files), or why there is none.
/// `opendkim-testmsg` cannot be used: it takes no keys for verifying, only live DNS.
fn opendkim() -> Result<&'static str, String> {
    ["/usr/sbin/opendkim", "opendkim"]
        .into_iter()
        .find(|binary| Command::new(binary).arg("-V").output().is_ok())
        .ok_or_else(|| "OpenDKIM is not installed (apt-get install opendkim)".to_string())
}

/// What OpenDKIM says of `message`, with `records` as its only DNS (its TestPublicKeys
/// option). It reports one signature: the first that verifies, else the first.
fn opendkim_verdict(binary: &str, message: &[u8], records: &[DnsRecord]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let keys_text: String = records
        .iter()
        .map(|record| format!("{} {}\n", record.name, record.value))
        .collect();
    std::fs::write(&keys, keys_text).unwrap();
    let config = dir.path().join("opendkim.conf");
    std::fs::write(
        &config,
        format!("Mode v\nSyslog no\nTestPublicKeys {}\n", keys.display()),
    )
    .unwrap();
    let path = dir.path().join("message.eml");
    std::fs::write(&path, message).unwrap();
    let output = Command::new(binary)
        .arg("-x")
        .arg(&config)
        .arg("-t")
        .arg(&path)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // Only the verdict: the temporary path differs every run.
    said.split_once(": verification ")
        .map_or(said.clone(), |(_, verdict)| verdict.trim().to_string())
}

/// A second opinion beside dkimpy's, so it is skipped without OpenDKIM even under CI.
#[test]
fn opendkim_passes_our_signatures_and_fails_altered_ones() {
    let binary = match opendkim() {
        Ok(binary) => binary,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let cases = [
        (
            vec![("lp", rsa_key())],
            "(s=lp, d=example.com, 2048-bit key)",
        ),
        // OpenDKIM 2.11 reports Ed25519 keys as 0-bit.
        (
            vec![("lp-ed", ed25519_key())],
            "(s=lp-ed, d=example.com, 0-bit key)",
        ),
    ];
    for (keys, key) in cases {
        let signer = signer(keys);
        let message = signed(&signer, FULL);
        let records = signer.dns_records();
        assert_eq!(
            opendkim_verdict(binary, &message, records),
            format!("{key} succeeded")
        );
        for altered in [
            tamper(
                &message,
                "Content-Type: text/html",
                "Foundation",
                "Foundatiom",
            ),
            tamper(&message, "\r\nSubject:", "?b?", "?B?"),
        ] {
            let verdict = opendkim_verdict(binary, &altered, records);
            assert!(
                verdict.ends_with("failed: signature verification failed"),
                "{verdict}"
            );
        }
    }
}
