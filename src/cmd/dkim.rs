//! `letterpress dkim keygen`: a new key where sends will read it, and the DNS record to publish.

use std::process::ExitCode;

use anyhow::Context as _;
use chrono::Datelike;

use super::{Context, print, require};
use crate::cli::{DkimCommand, KeyAlgorithm};
use crate::diagnostic::Invalid;
use crate::message::dkim::{
    Algorithm, DkimConfig, RSA_BITS, Selector, SigningDomain, keygen, write_private_key,
};

pub fn run(context: &Context, command: &DkimCommand) -> anyhow::Result<ExitCode> {
    match command {
        DkimCommand::Keygen {
            selector,
            algorithm,
            domain,
        } => run_keygen(context, *algorithm, selector.as_deref(), domain.as_deref()),
    }
}

fn run_keygen(
    context: &Context,
    algorithm: KeyAlgorithm,
    selector: Option<&str>,
    domain: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let newsletter = require(context.workspace.load_newsletter())?;
    let algorithm = match algorithm {
        KeyAlgorithm::Rsa => Algorithm::Rsa,
        KeyAlgorithm::Ed25519 => Algorithm::Ed25519,
    };
    let usage = |error: crate::message::dkim::DkimError| Invalid::usage(error.to_string());
    let configured = newsletter.dkim.as_ref();
    let configured_selector = configured.and_then(|config| match algorithm {
        Algorithm::Rsa => config.selector.clone(),
        Algorithm::Ed25519 => config.ed25519_selector.clone(),
    });
    let selector = match selector {
        Some(text) => Selector::parse(text).map_err(usage)?,
        None => match &configured_selector {
            Some(selector) => selector.clone(),
            // A year in the name leaves room for the next key when this one is rotated.
            None => Selector::parse(&format!("lp{}", context.clock.now().year())).map_err(usage)?,
        },
    };
    let domain = match domain {
        Some(text) => SigningDomain::parse(text).map_err(usage)?,
        None => match configured.and_then(|config| config.domain.clone()) {
            Some(domain) => domain,
            None => SigningDomain::of_address(&newsletter.from.address).map_err(usage)?,
        },
    };
    // Written where a send will read it: the file the environment names for this
    // algorithm, else `.letterpress/dkim/<selector>.pem`.
    let (rsa, ed25519) = match algorithm {
        Algorithm::Rsa => (Some(selector.clone()), None),
        Algorithm::Ed25519 => (None, Some(selector.clone())),
    };
    let file = DkimConfig::new(rsa, ed25519, Some(domain.clone()))
        .map_err(usage)?
        .key_files(context.state.dkim_keys(), context.state.path())
        .pop()
        .expect("one selector gives one key file");
    if file.path.exists() {
        return Err(Invalid::usage(format!(
            "`{}` already exists, and a key may already be published in DNS: it is never overwritten. Choose another selector (--selector) for a new key",
            file.shown()
        ))
        .into());
    }
    let key = keygen(algorithm, &selector, &domain)?;
    if file.from_env.is_none() {
        context.state.create()?;
    }
    write_private_key(&file.path, &key.pem)
        .with_context(|| format!("cannot write the key to `{}`", file.shown()))?;

    let size = match algorithm {
        Algorithm::Rsa => format!(" ({RSA_BITS} bits)"),
        Algorithm::Ed25519 => String::new(),
    };
    let shown = match file.from_env {
        Some(_) => file.shown(),
        None => context.state.display(
            file.path
                .strip_prefix(context.state.path())
                .unwrap_or(&file.path),
        ),
    };
    println!(
        "Wrote a new {algorithm} key{size} to {shown}, readable by you alone. Keep it secret and back it up: losing it means a new key and a new DNS record."
    );
    println!();
    println!("Publish this TXT record in the DNS of {domain}:");
    print::dns_record(&key.dns);
    println!();
    if configured_selector.as_ref() == Some(&selector) {
        println!(
            "newsletter.yaml already names this selector: once the record is published, every message is signed with it."
        );
    } else {
        let field = match algorithm {
            Algorithm::Rsa => "selector",
            Algorithm::Ed25519 => "ed25519_selector",
        };
        println!("Then sign with it, in newsletter.yaml:");
        println!("  dkim:");
        println!("    {field}: {selector}");
        if domain.as_str() != newsletter.from.address.ascii_domain() {
            println!("    domain: {domain}");
        }
    }
    println!("`letterpress check` then verifies the key.");
    Ok(ExitCode::SUCCESS)
}
