//! The official `openai` Python package (in the venv `make test` creates) against the gateway.

use crate::both_backends;
use crate::common::*;
use crate::gateway::Gw;
use std::process::Command;

both_backends!(the_official_openai_client_works_against_the_gateway);

async fn the_official_openai_client_works_against_the_gateway(backend: Backend) {
    let python = std::env::var("TOLLGATE_TEST_PYTHON").expect(
        "TOLLGATE_TEST_PYTHON must name a python with the openai package (make unit sets it)",
    );
    let gw = Gw::start(backend, "1", |_, _| {}).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/openai_client.py");
    let base = gw.app.url("/v1");
    let key = gw.key.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .env("TOLLGATE_BASE_URL", base)
            .env("TOLLGATE_API_KEY", key)
            .output()
    })
    .await
    .expect("join")
    .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "openai client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("5 passed, 0 failed"), "{stdout}");
    // Chat twice (plain and streamed) and one embedding were charged; the bad key was not.
    gw.settled(3).await;
    assert!(gw.balance().await < 1_000_000);
    gw.stop().await;
}
