//! What a DKIM signature costs per message, and where the time goes: the body hash (relaxed
//! canonicalisation + SHA-256 of the whole message), the private-key operation, and the rest
//! (header selection, the signature field, copying). `cargo bench --bench dkim`.
//!
//! The message is the example issue's, as `send` builds it (about 37 KiB); every reader's
//! body differs, so each message pays all of this.
//!
//! Times are the benchmark thread's CPU time, not wall time: the machines this runs on share
//! two cores between several builds, and a signature's cost is what it takes from the send's
//! CPU budget. (Criterion prints them as `time:`.)

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

use letterpress::edition::Edition;
use letterpress::message::dkim::{DkimSigner, PrivateKey, Selector, SigningDomain};
use letterpress::message::{Kind, Recipient};
use letterpress::model::address::EmailAddress;
use letterpress::secret::Secret;
use letterpress::workspace::Workspace;
use mail_auth::common::crypto::{Algorithm, SigningKey};
use mail_auth::common::headers::Writable;

fn fixture_key(name: &str) -> PrivateKey {
    let path = format!("{}/tests/fixtures/dkim/{name}", env!("CARGO_MANIFEST_DIR"));
    PrivateKey::from_pem(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn signer(keys: Vec<(&str, &str)>) -> DkimSigner {
    DkimSigner::new(
        SigningDomain::parse("example.com").unwrap(),
        keys.into_iter()
            .map(|(selector, file)| (Selector::parse(selector).unwrap(), fixture_key(file)))
            .collect(),
    )
}

/// A key that does everything a real one does but the private-key operation: it takes the
/// canonicalised headers into a buffer (as the RSA key does) and returns a signature-sized
/// zero. Signing with it times mail-auth's part alone.
struct NoMathsKey;

impl SigningKey for NoMathsKey {
    type Hasher = mail_auth::common::crypto::Sha256;

    fn sign(&self, input: impl Writable) -> mail_auth::Result<Vec<u8>> {
        let mut data = Vec::with_capacity(2048);
        input.write(&mut data);
        black_box(&data);
        Ok(vec![0; 256])
    }

    fn algorithm(&self) -> Algorithm {
        Algorithm::RsaSha256
    }
}

/// The calling thread's CPU time (CLOCK_THREAD_CPUTIME_ID), in nanoseconds.
struct ThreadCpu {
    /// Only for its formatter, which shows nanoseconds as wall time does.
    wall: WallTime,
}

fn thread_cpu_nanos() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given and nothing else.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(status, 0, "no thread CPU clock");
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

impl Measurement for ThreadCpu {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        thread_cpu_nanos()
    }

    fn end(&self, start: u64) -> u64 {
        thread_cpu_nanos() - start
    }

    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }

    fn zero(&self) -> u64 {
        0
    }

    fn to_f64(&self, value: &u64) -> f64 {
        *value as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        self.wall.formatter()
    }
}

fn benchmarks(criterion: &mut Criterion<ThreadCpu>) {
    let workspace = Workspace::new(env!("CARGO_MANIFEST_DIR"));
    let edition = Edition::load(&workspace, "2021-08-23")
        .unwrap_or_else(|error| panic!("the example does not load: {}", error.first_problem()))
        .value;
    let template = edition.message_template(Kind::Issue).unwrap();
    let secret = Secret::from_passphrase("a benchmark secret that is long enough").unwrap();
    let email = EmailAddress::parse("maximiliana.example@example.com").unwrap();
    let recipient = Recipient {
        email: &email,
        name: Some("Maximiliana Example"),
    };
    let date = "Mon, 23 Aug 2021 09:00:00 -0400";
    let mut message = Vec::with_capacity(64 * 1024);
    template.write(recipient, &secret, date, &mut message);
    eprintln!("the message: {} bytes", message.len());

    let rsa = signer(vec![("lp", "rsa2048.pkcs8.pem")]);
    let ed25519 = signer(vec![("lp-ed", "ed25519.pem")]);
    let both = signer(vec![("lp", "rsa2048.pkcs8.pem"), ("lp-ed", "ed25519.pem")]);

    let mut group = criterion.benchmark_group("dkim");
    group.bench_function("sign: rsa-sha256 (RSA-2048)", |bench| {
        bench.iter(|| rsa.signature_headers(black_box(&message)).unwrap())
    });
    group.bench_function("sign: ed25519-sha256", |bench| {
        bench.iter(|| ed25519.signature_headers(black_box(&message)).unwrap())
    });
    group.bench_function("sign: rsa-sha256 + ed25519-sha256", |bench| {
        bench.iter(|| both.signature_headers(black_box(&message)).unwrap())
    });
    let mut out = Vec::with_capacity(64 * 1024);
    group.bench_function("build + sign + prepend: ed25519-sha256", |bench| {
        bench.iter(|| {
            out.clear();
            template.write(recipient, black_box(&secret), date, &mut out);
            ed25519.prepend_signatures(&mut out).unwrap();
            black_box(out.len())
        })
    });

    // Where the time goes.
    let no_maths = mail_auth::dkim::DkimSigner::from_key(NoMathsKey)
        .domain("example.com")
        .selector("lp")
        .headers([
            "From",
            "Reply-To",
            "To",
            "Subject",
            "Date",
            "Message-ID",
            "MIME-Version",
            "Content-Type",
            "List-Id",
            "List-Unsubscribe",
            "List-Unsubscribe-Post",
            "From",
            "Reply-To",
            "To",
            "Subject",
            "Date",
            "Message-ID",
            "MIME-Version",
            "Content-Type",
            "List-Id",
            "List-Unsubscribe",
            "List-Unsubscribe-Post",
        ]);
    group.bench_function(
        "part: mail-auth alone (select, canonicalise, body hash; no key maths)",
        |bench| bench.iter(|| no_maths.sign(black_box(&message)).unwrap()),
    );
    group.bench_function(
        "part: SHA-256 of the whole message, not canonicalised",
        |bench| bench.iter(|| ring::digest::digest(&ring::digest::SHA256, black_box(&message))),
    );
    let header_data = vec![b'h'; 1200];
    let rsa_pair =
        ring::signature::RsaKeyPair::from_pkcs8(&pkcs8_der("rsa2048.pkcs8.pem")).unwrap();
    let random = ring::rand::SystemRandom::new();
    let mut signature = vec![0; rsa_pair.public().modulus_len()];
    group.bench_function(
        "part: RSA-2048 signature of 1.2 KB of headers (ring)",
        |bench| {
            bench.iter(|| {
                rsa_pair
                    .sign(
                        &ring::signature::RSA_PKCS1_SHA256,
                        &random,
                        black_box(&header_data),
                        &mut signature,
                    )
                    .unwrap()
            })
        },
    );
    let ed_pair =
        ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8_der("ed25519.pem"))
            .unwrap();
    group.bench_function(
        "part: Ed25519 signature of a 32-byte digest (ring)",
        |bench| bench.iter(|| ed_pair.sign(black_box(&[7u8; 32]))),
    );
    let headers = both.signature_headers(&message).unwrap();
    group.bench_function("part: prepend 2 signature fields to the message", |bench| {
        bench.iter(|| {
            out.clear();
            out.extend_from_slice(&message);
            out.splice(0..0, black_box(headers.as_bytes()).iter().copied());
            black_box(out.len())
        })
    });
    group.bench_function("part: copy the message (the prepend's baseline)", |bench| {
        bench.iter(|| {
            out.clear();
            out.extend_from_slice(black_box(&message));
            black_box(out.len())
        })
    });
    group.finish();
}

/// The DER inside a fixture's PEM.
fn pkcs8_der(name: &str) -> Vec<u8> {
    use base64::Engine;
    let path = format!("{}/tests/fixtures/dkim/{name}", env!("CARGO_MANIFEST_DIR"));
    let pem = std::fs::read_to_string(path).unwrap();
    let body: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(ThreadCpu { wall: WallTime });
    targets = benchmarks
}
criterion_main!(benches);
