//! DKIM keys: reading a private key from its PEM file, making a new one, and the DNS record
//! that publishes its public half.
//!
//! The maths is `ring`'s (constant-time, and already here for rustls). `ring` cannot make RSA
//! keys, so `keygen` takes them from the `rsa` crate, which also writes an RSA public key as
//! the SubjectPublicKeyInfo DNS wants; nothing signs with it, since its signing is not
//! constant-time (RUSTSEC-2023-0071).

use std::fmt;
use std::io::{self, Write};
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

use super::{Selector, SigningDomain};

/// The size of the RSA keys `keygen` makes: RFC 8301 asks for at least 1024 bits and
/// recommends 2048; receivers such as Gmail treat 1024 as weak. Longer keys sign several
/// times slower and no longer fit one 255-byte TXT string either way.
pub const RSA_BITS: usize = 2048;

/// A DKIM signing algorithm; the hash is always SHA-256 (RFC 8301 forbids SHA-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `rsa-sha256`, which every receiver verifies.
    Rsa,
    /// `ed25519-sha256` (RFC 8463): small keys, fast signatures, but not yet verified by every
    /// receiver, so it goes beside an RSA signature rather than instead of one.
    Ed25519,
}

impl Algorithm {
    /// The `a=` tag of a signature.
    pub fn dkim_name(self) -> &'static str {
        match self {
            Algorithm::Rsa => "rsa-sha256",
            Algorithm::Ed25519 => "ed25519-sha256",
        }
    }

    /// The `k=` tag of a key record.
    pub fn key_type(self) -> &'static str {
        match self {
            Algorithm::Rsa => "rsa",
            Algorithm::Ed25519 => "ed25519",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.dkim_name())
    }
}

/// Why a PEM file does not hold a key we can sign with. Each message completes "the key
/// `path` ...".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error(
        "holds no PEM private key (expected `-----BEGIN PRIVATE KEY-----` or `-----BEGIN RSA PRIVATE KEY-----`)"
    )]
    NotPem,
    #[error(
        "is encrypted; letterpress reads unencrypted keys kept private by the file's mode (decrypt it with `openssl pkey -in KEY -out KEY.pem`, then `chmod 600 KEY.pem`)"
    )]
    Encrypted,
    #[error("holds an EC key; DKIM signs with RSA (rsa-sha256) or Ed25519 (ed25519-sha256)")]
    EllipticCurve,
    #[error(
        "holds an RSA key shorter than 2048 bits, which receivers treat as weak (RFC 8301); make a new one with `letterpress dkim keygen`"
    )]
    RsaTooShort,
    #[error("holds an RSA key longer than 4096 bits, which letterpress cannot sign with")]
    RsaTooLong,
    #[error("holds a private key that is neither RSA nor Ed25519")]
    OtherAlgorithm,
    #[error("holds a damaged {algorithm} private key ({reason})")]
    Damaged {
        algorithm: Algorithm,
        reason: String,
    },
    #[error("cannot be made: {0}")]
    Generate(String),
}

enum Pair {
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A private key, ready to sign. Its `Debug` never shows the key.
pub struct PrivateKey {
    pair: Pair,
    /// The `p=` value: base64 of the SubjectPublicKeyInfo for RSA (what OpenDKIM and most
    /// verifiers expect), of the raw 32 bytes for Ed25519 (RFC 8463).
    public: String,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({}, <redacted>)", self.algorithm())
    }
}

impl PrivateKey {
    /// Reads an RSA key (PKCS#1 `RSA PRIVATE KEY` or PKCS#8 `PRIVATE KEY`) or an Ed25519 key
    /// (PKCS#8 `PRIVATE KEY`, with or without its public half, as OpenSSL writes it).
    pub fn from_pem(text: &str) -> Result<PrivateKey, KeyError> {
        if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
            || text.contains("Proc-Type: 4,ENCRYPTED")
        {
            return Err(KeyError::Encrypted);
        }
        match PrivateKeyDer::from_pem_slice(text.as_bytes()).map_err(|_| KeyError::NotPem)? {
            PrivateKeyDer::Pkcs1(der) => rsa_pair(RsaKeyPair::from_der(der.secret_pkcs1_der())),
            PrivateKeyDer::Pkcs8(der) => {
                let der = der.secret_pkcs8_der();
                match RsaKeyPair::from_pkcs8(der) {
                    Err(rejected) if rejected.to_string() == "WrongAlgorithm" => {
                        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(
                            |rejected| match rejected.to_string().as_str() {
                                "WrongAlgorithm" if contains(der, EC_PUBLIC_KEY_OID) => {
                                    KeyError::EllipticCurve
                                }
                                "WrongAlgorithm" => KeyError::OtherAlgorithm,
                                reason => KeyError::Damaged {
                                    algorithm: Algorithm::Ed25519,
                                    reason: reason.to_string(),
                                },
                            },
                        )?;
                        let public = STANDARD.encode(pair.public_key().as_ref());
                        Ok(PrivateKey {
                            pair: Pair::Ed25519(pair),
                            public,
                        })
                    }
                    result => rsa_pair(result),
                }
            }
            PrivateKeyDer::Sec1(_) => Err(KeyError::EllipticCurve),
            _ => Err(KeyError::OtherAlgorithm),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        match self.pair {
            Pair::Rsa(_) => Algorithm::Rsa,
            Pair::Ed25519(_) => Algorithm::Ed25519,
        }
    }

    /// The key record's value: `v=DKIM1; k=rsa; p=...`.
    pub fn record_value(&self) -> String {
        format!(
            "v=DKIM1; k={}; p={}",
            self.algorithm().key_type(),
            self.public
        )
    }

    /// The DNS record that publishes this key for `selector` under `domain`.
    pub fn dns_record(&self, selector: &Selector, domain: &SigningDomain) -> DnsRecord {
        DnsRecord {
            name: format!("{selector}._domainkey.{domain}"),
            value: self.record_value(),
        }
    }

    /// The signature of `data` (the canonicalised headers), as the algorithm defines it: RSA
    /// signs the data with PKCS#1 v1.5 over its SHA-256; Ed25519 signs the SHA-256 digest itself
    /// (RFC 8463, section 3), which the caller passes as `data`.
    pub(super) fn sign(&self, data: &[u8]) -> Result<Vec<u8>, ring::error::Unspecified> {
        match &self.pair {
            Pair::Rsa(pair) => {
                let mut signature = vec![0; pair.public().modulus_len()];
                // PKCS#1 v1.5 padding is deterministic: the generator is never used for it.
                pair.sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    data,
                    &mut signature,
                )?;
                Ok(signature)
            }
            Pair::Ed25519(pair) => Ok(pair.sign(data).as_ref().to_vec()),
        }
    }
}

/// The DER of the OID id-ecPublicKey (1.2.840.10045.2.1), which names an EC key in PKCS#8:
/// recognised only to say what the key is.
const EC_PUBLIC_KEY_OID: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

fn rsa_pair(result: Result<RsaKeyPair, ring::error::KeyRejected>) -> Result<PrivateKey, KeyError> {
    let pair = result.map_err(|rejected| match rejected.to_string().as_str() {
        "TooSmall" => KeyError::RsaTooShort,
        "TooLarge" => KeyError::RsaTooLong,
        "WrongAlgorithm" => KeyError::OtherAlgorithm,
        reason => KeyError::Damaged {
            algorithm: Algorithm::Rsa,
            reason: reason.to_string(),
        },
    })?;
    let spki = spki_der(pair.public().as_ref()).map_err(|reason| KeyError::Damaged {
        algorithm: Algorithm::Rsa,
        reason,
    })?;
    Ok(PrivateKey {
        public: STANDARD.encode(spki),
        pair: Pair::Rsa(pair),
    })
}

/// The SubjectPublicKeyInfo DER of an RSA public key given as PKCS#1 `RSAPublicKey` DER (what
/// `ring` gives).
fn spki_der(pkcs1: &[u8]) -> Result<Vec<u8>, String> {
    use rsa::pkcs1::DecodeRsaPublicKey;
    use rsa::pkcs8::EncodePublicKey;
    let key = rsa::RsaPublicKey::from_pkcs1_der(pkcs1).map_err(|error| error.to_string())?;
    let document = key.to_public_key_der().map_err(|error| error.to_string())?;
    Ok(document.as_bytes().to_vec())
}

/// A TXT record to publish: `name` holds `value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRecord {
    /// `<selector>._domainkey.<domain>`, without the final dot.
    pub name: String,
    /// The record's text on one line, as DNS web consoles want it pasted.
    pub value: String,
}

/// The longest string a TXT record holds; longer values are split into several strings,
/// which verifiers join without a separator (RFC 6376, section 3.6.2.2).
const TXT_STRING: usize = 255;

impl DnsRecord {
    /// The value split into strings of at most 255 bytes.
    pub fn strings(&self) -> Vec<&str> {
        // The value is ASCII (tags and base64), so any byte offset is a character boundary.
        self.value
            .as_bytes()
            .chunks(TXT_STRING)
            .map(|chunk| std::str::from_utf8(chunk).expect("a DKIM key record is ASCII"))
            .collect()
    }

    /// The record in zone-file form (BIND and most DNS servers), one quoted string a line:
    ///
    /// ```text
    /// lp2026._domainkey.example.com. IN TXT ( "v=DKIM1; k=rsa; p=MIIBIjANBg..."
    ///     "...IDAQAB" )
    /// ```
    pub fn zone_file(&self) -> String {
        let strings = self.strings();
        let mut out = format!("{}. IN TXT (", self.name);
        for (index, string) in strings.iter().enumerate() {
            if index > 0 {
                out.push_str("\n   ");
            }
            out.push_str(" \"");
            out.push_str(string);
            out.push('"');
        }
        out.push_str(" )");
        out
    }
}

impl fmt::Display for DnsRecord {
    /// Name and value on one line, for a DNS console.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} TXT {}", self.name, self.value)
    }
}

/// A freshly made key: the PEM to keep secret, and the record to publish.
pub struct NewKey {
    pub pem: String,
    pub dns: DnsRecord,
}

impl fmt::Debug for NewKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewKey")
            .field("pem", &"<redacted>")
            .field("dns", &self.dns)
            .finish()
    }
}

/// Makes a key for `selector` under `domain`: PKCS#8 PEM (RSA keys are 2048 bits), and the TXT
/// record that publishes it. Nothing is written; see `write_private_key`.
pub fn keygen(
    algorithm: Algorithm,
    selector: &Selector,
    domain: &SigningDomain,
) -> Result<NewKey, KeyError> {
    let pem = match algorithm {
        Algorithm::Rsa => {
            use rsa::pkcs8::{EncodePrivateKey, LineEnding};
            let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, RSA_BITS)
                .map_err(|error| KeyError::Generate(error.to_string()))?;
            key.to_pkcs8_pem(LineEnding::LF)
                .map_err(|error| KeyError::Generate(error.to_string()))?
                .to_string()
        }
        Algorithm::Ed25519 => {
            let der = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .map_err(|error| KeyError::Generate(error.to_string()))?;
            pem_encode("PRIVATE KEY", der.as_ref())
        }
    };
    // Reading it back is how the record is derived, and proves the file will load.
    let key = PrivateKey::from_pem(&pem)?;
    Ok(NewKey {
        dns: key.dns_record(selector, domain),
        pem,
    })
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    let base64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in base64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Writes a private key readable by its owner only (mode 0600), creating its folder (mode
/// 0700) if needed. Never replaces a file: an existing key may already be published in DNS,
/// and overwriting it would break every signature until the record is changed.
pub fn write_private_key(path: &Path, pem: &str) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    let written = file
        .write_all(pem.as_bytes())
        .and_then(|()| file.sync_all());
    if written.is_err() {
        // A half-written key would fail later with a confusing message; better no file.
        let _ = std::fs::remove_file(path);
    }
    written
}
