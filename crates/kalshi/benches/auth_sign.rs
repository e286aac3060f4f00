//! Cost of signing and verifying one Kalshi request with a 2048-bit RSA key (RSA-PSS,
//! SHA-256). Signing happens once per REST call and per WebSocket handshake; verifying once per
//! request in the simulator.
//!
//! `cargo bench -p kd-kalshi --bench auth_sign`

use criterion::{Criterion, criterion_group, criterion_main};
use kd_kalshi::auth::{Signer, Verifier, generate_keypair};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let Ok((private, public)) = generate_keypair(2048) else {
        eprintln!("key generation failed");
        return;
    };
    let Ok(signer) = Signer::from_pem("bench", &private) else {
        return;
    };
    let mut verifier = Verifier::new();
    if verifier.add_pem("bench", &public).is_err() {
        return;
    }
    let path = "/trade-api/v2/markets/KXBTCD-26MAY3017-T73499.99/orderbook";
    c.bench_function("sign_rsa2048_pss", |b| {
        b.iter(|| signer.headers_at(black_box(1_700_000_000_000), "GET", black_box(path)))
    });
    let Ok(h) = signer.headers_at(1_700_000_000_000, "GET", path) else {
        return;
    };
    c.bench_function("verify_rsa2048_pss", |b| {
        b.iter(|| {
            verifier.verify(
                "bench",
                &h.timestamp_ms,
                "GET",
                black_box(path),
                &h.signature,
            )
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
