//! The official `openai` Python package (in the venv `make test` creates) against the gateway.

use crate::both_backends;
use crate::common::*;
use crate::gateway::Gw;
use std::process::Command;

both_backends!(
    the_official_openai_client_works_against_the_gateway,
    the_official_anthropic_client_works_against_the_gateway,
    the_official_openai_client_speaks_the_responses_api,
    chat_clients_read_balances_and_redeem_codes,
    the_agents_sdks_work_through_gemini_and_azure_channels,
);

fn python() -> String {
    std::env::var("TOLLGATE_TEST_PYTHON").expect(
        "TOLLGATE_TEST_PYTHON must name a python with the openai package (make unit sets it)",
    )
}

/// Runs a script of `tests/python` with the gateway's address and key (and `env`); its stdout.
async fn run_script(name: &str, gw: &Gw, env: Vec<(&'static str, String)>) -> String {
    let script = format!("{}/tests/python/{name}", env!("CARGO_MANIFEST_DIR"));
    let base = gw.app.url("/v1");
    let key = gw.key.clone();
    let python = python();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .env("TOLLGATE_BASE_URL", base)
            .env("TOLLGATE_API_KEY", key)
            .envs(env)
            .output()
    })
    .await
    .expect("join")
    .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{name} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Redeem codes, call logs, the billing endpoints chat clients read, prices and build facts,
/// through the official client and plain HTTP; the balance in the database agrees.
async fn chat_clients_read_balances_and_redeem_codes(backend: Backend) {
    let gw = Gw::start(backend, "1", |_, _| {}).await;
    let created: serde_json::Value = TestApp::bare_client()
        .post(gw.app.url("/api/admin/redeem-codes"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({ "count": 1, "value": "4" }))
        .send()
        .await
        .expect("batch")
        .json()
        .await
        .expect("json");
    let code = created["codes"][0].as_str().expect("code").to_string();
    let stdout = run_script(
        "billing_client.py",
        &gw,
        vec![("TOLLGATE_REDEEM_CODE", code)],
    )
    .await;
    assert!(
        stdout.contains("billing client: 5 passed, 0 failed"),
        "{stdout}"
    );
    gw.settled(1).await;
    let balance = gw.balance().await;
    assert!(balance > 4_000_000 && balance < 5_000_000, "{balance}");
    gw.stop().await;
}

async fn the_official_openai_client_works_against_the_gateway(backend: Backend) {
    let gw = Gw::start(backend, "1", |_, _| {}).await;
    let limited = crate::gateway::create_key(
        &gw.app,
        serde_json::json!({ "user_id": gw.user_id, "name": "limited", "rpm": 2 }),
    )
    .await["key"]
        .as_str()
        .expect("key")
        .to_string();
    let stdout = run_script(
        "openai_client.py",
        &gw,
        vec![("TOLLGATE_LIMITED_KEY", limited)],
    )
    .await;
    assert!(stdout.contains("6 passed, 0 failed"), "{stdout}");
    // Chat four times (plain, streamed, twice on the limited key) and one embedding were
    // charged, the refused call logged (free), the bad key's call not.
    gw.settled(6).await;
    assert!(gw.balance().await < 1_000_000);
    gw.stop().await;
}

/// Claude Code's SDK: Messages through an Anthropic channel and converted over a chat one.
async fn the_official_anthropic_client_works_against_the_gateway(backend: Backend) {
    use crate::gateway::agents;
    let gw = Gw::start(backend, "1", |c, m| agents::agents(c, m, "")).await;
    let stdout = run_script(
        "anthropic_client.py",
        &gw,
        vec![
            ("TOLLGATE_CLAUDE", agents::CLAUDE.to_string()),
            ("TOLLGATE_AGENT", agents::AGENT.to_string()),
        ],
    )
    .await;
    assert!(
        stdout.contains("anthropic client: 6 passed, 0 failed"),
        "{stdout}"
    );
    // Five calls served (two of them streamed); the refused ones were free.
    let served = gw
        .scalar("SELECT COUNT(*) FROM usage_logs WHERE user_id = $1 AND cost > 0")
        .await;
    assert_eq!(served, 5);
    let rows = gw.quiet_rows().await;
    gw.settled(rows).await;
    gw.stop().await;
}

/// Codex's SDK calls: the Responses API through an `openai` channel and converted over chat.
async fn the_official_openai_client_speaks_the_responses_api(backend: Backend) {
    use crate::gateway::{agents, codex};
    let gw = Gw::start(backend, "1", |c, m| codex::codex(c, m, "")).await;
    let stdout = run_script(
        "codex_client.py",
        &gw,
        vec![
            ("TOLLGATE_CODEX", codex::CODEX.to_string()),
            ("TOLLGATE_AGENT", agents::AGENT.to_string()),
        ],
    )
    .await;
    assert!(
        stdout.contains("codex client: 6 passed, 0 failed"),
        "{stdout}"
    );
    // Five calls served; the refused one was free.
    let served = gw
        .scalar("SELECT COUNT(*) FROM usage_logs WHERE user_id = $1 AND cost > 0")
        .await;
    assert_eq!(served, 5);
    gw.settled(6).await;
    gw.stop().await;
}

/// Claude Code's and Codex's SDK calls through the other kinds: the same scripts, their agent
/// model served by a `gemini` channel (Google's protocol), then by an `azure` one.
async fn the_agents_sdks_work_through_gemini_and_azure_channels(backend: Backend) {
    use crate::gateway::{agents, azure, codex, gemini};
    // Gemini counts the thinking (3 tokens) apart from the answer (6); chat counts it within.
    for (kind, output) in ["gemini", "azure"].into_iter().zip([9, 6]) {
        let gw = Gw::start(backend, "1", |c, m| {
            codex::codex(c, m, "");
            if kind == "gemini" {
                gemini::gemini(c, m, "g", "agent-via", "tool=1,reasoning=1,cached=2");
            } else {
                azure::agent(c, m, "agent-via");
            }
        })
        .await;
        let stdout = run_script(
            "anthropic_client.py",
            &gw,
            vec![
                ("TOLLGATE_CLAUDE", agents::CLAUDE.to_string()),
                ("TOLLGATE_AGENT", "agent-via".to_string()),
                ("TOLLGATE_AGENT_OUTPUT", output.to_string()),
            ],
        )
        .await;
        assert!(
            stdout.contains("anthropic client: 6 passed, 0 failed"),
            "{kind}: {stdout}"
        );
        // Responses calls go to Azure as they came (its own Responses API, function calls over
        // two turns); over Gemini they are converted, tools and all.
        let stdout = run_script(
            "codex_client.py",
            &gw,
            vec![
                ("TOLLGATE_CODEX", codex::CODEX.to_string()),
                ("TOLLGATE_AGENT", "agent-via".to_string()),
                // Azure stores responses: the agent's are continued there.
                (
                    "TOLLGATE_AGENT_STORES",
                    u8::from(kind == "azure").to_string(),
                ),
            ],
        )
        .await;
        assert!(
            stdout.contains("codex client: 6 passed, 0 failed"),
            "{kind}: {stdout}"
        );
        let up = gw.mock.requests().await;
        let through = |path: &str| {
            up.iter()
                .filter(|r| match kind {
                    "gemini" => r["path"] == "gemini",
                    _ => r["path"] == path && !r["azure"].is_null(),
                })
                .count()
        };
        // Two Messages calls and two Responses calls served by the agent's channel: over Gemini
        // all four converted, on Azure the Messages over chat and the Responses as they came
        // (and a third, which continues one stored there).
        match kind {
            "gemini" => assert_eq!(through(""), 4, "{up:?}"),
            _ => assert_eq!((through("chat"), through("responses")), (2, 3), "{up:?}"),
        }
        let rows = gw.quiet_rows().await;
        gw.settled(rows).await;
        assert_eq!(
            gw.scalar("SELECT CAST(SUM(cost) AS BIGINT) FROM usage_logs WHERE user_id = $1")
                .await,
            1_000_000 - gw.balance().await,
            "{kind}: balance = what the calls cost"
        );
        gw.stop().await;
    }
}
