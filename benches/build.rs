//! Micro-benchmarks of the two costs every send pays: rendering the issue (once per send) and
//! building one personalised message (once per recipient). `cargo bench`; the comparison with
//! other tools is `bench/run`.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

use letterpress::edition::Edition;
use letterpress::message::{Kind, Recipient};
use letterpress::model::address::EmailAddress;
use letterpress::render;
use letterpress::secret::Secret;
use letterpress::workspace::Workspace;

fn example() -> Edition {
    let workspace = Workspace::new(env!("CARGO_MANIFEST_DIR"));
    match Edition::load(&workspace, "2021-08-23") {
        Ok(valid) => valid.value,
        Err(error) => panic!(
            "the example workspace does not load: {}",
            error.first_problem()
        ),
    }
}

fn benchmarks(criterion: &mut Criterion) {
    let edition = example();
    criterion.bench_function(
        "render the example issue (HTML with inlined CSS, and text)",
        |bench| {
            bench.iter(|| {
                render::render(
                    black_box(&edition.newsletter),
                    black_box(&edition.issue),
                    black_box(&edition.theme),
                )
                .unwrap()
            })
        },
    );

    let template = edition.message_template(Kind::Issue).unwrap();
    let secret = Secret::from_passphrase("a benchmark secret that is long enough").unwrap();
    let email = EmailAddress::parse("maximiliana.example@example.com").unwrap();
    let date = "Mon, 23 Aug 2021 09:00:00 -0400";
    let mut message = Vec::with_capacity(64 * 1024);
    criterion.bench_function(
        "build one personalised message of the example issue",
        |bench| {
            bench.iter(|| {
                message.clear();
                template.write(
                    Recipient {
                        email: &email,
                        name: Some("Maximiliana Example"),
                    },
                    black_box(&secret),
                    date,
                    &mut message,
                );
                black_box(message.len())
            })
        },
    );
}

criterion_group!(benches, benchmarks);
criterion_main!(benches);
