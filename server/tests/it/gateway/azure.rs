//! Azure OpenAI channels: the `api-key` header, the v1 API (the deployment named as the model)
//! and the deployment URLs with an `api-version`; chat, Responses and embeddings natively,
//! Messages converted over chat; the version checked where a channel is written.

use super::*;
use crate::both_backends;

both_backends!(
    azure_channels_speak_the_v1_api_and_the_deployment_urls,
    an_api_version_is_azures_alone_and_checked,
);

const V1_MODEL: &str = "gpt-4o-az";
const DEPLOYMENT: &str = "my-gpt-4o";
const EMBED_DEPLOYMENT: &str = "my-embedding";
const API_VERSION: &str = "2024-10-21";

/// The mock's resource endpoint (`base_url` of an Azure channel), with `directives`.
fn resource(mock: &Mock, directives: &str) -> String {
    mock.url(directives).trim_end_matches("/v1").to_string()
}

/// An Azure channel on the v1 API serving [`V1_MODEL`], and one on deployment URLs serving
/// [`DEPLOYMENT`] (the public model `gpt-dep`) and [`EMBED_DEPLOYMENT`].
fn azure(c: &mut Config, mock: &Mock) {
    let mut v1 = channel("azure-v1", resource(mock, ""), &[V1_MODEL], 0);
    v1.kind = types::ChannelKind::Azure;
    let mut deployments = channel(
        "azure-deployments",
        resource(mock, "reasoning_tokens=2"),
        &[DEPLOYMENT, EMBED_DEPLOYMENT],
        0,
    );
    deployments.kind = types::ChannelKind::Azure;
    deployments.api_version = Some(API_VERSION.into());
    c.channels.push(v1);
    c.channels.push(deployments);
    c.model_mapping
        .insert("gpt-dep".into(), vec![DEPLOYMENT.into()]);
    for model in [V1_MODEL, DEPLOYMENT, EMBED_DEPLOYMENT] {
        c.pricing.insert(
            model.into(),
            PriceConfig {
                input_per_1m: "1".into(),
                output_per_1m: "10".into(),
                cached_input_per_1m: None,
                per_request: None,
                ..Default::default()
            },
        );
    }
}

/// An Azure channel on the v1 API serving `model` (as `az-agent-up`) with tool calls,
/// reasoning and cache reads: the agents' model through Azure.
pub fn agent(c: &mut Config, mock: &Mock, model: &str) {
    let mut ch = channel(
        "azure-agent",
        resource(mock, "tool=1,reasoning=1,cached=2"),
        &["az-agent-up"],
        0,
    );
    ch.kind = types::ChannelKind::Azure;
    c.channels.push(ch);
    c.model_mapping
        .insert(model.into(), vec!["az-agent-up".into()]);
    c.pricing.insert(
        "az-agent-up".into(),
        PriceConfig {
            input_per_1m: "1".into(),
            output_per_1m: "10".into(),
            cached_input_per_1m: Some("0.5".into()),
            per_request: None,
            ..Default::default()
        },
    );
}

async fn azure_channels_speak_the_v1_api_and_the_deployment_urls(backend: Backend) {
    let gw = Gw::start(backend, "1", azure).await;
    // The v1 API: OpenAI's route under /openai/v1, the key in `api-key`, no version.
    let res = gw
        .post(
            "/v1/chat/completions",
            json!({ "model": V1_MODEL, "messages": hello(), "max_tokens": 10 }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["model"], V1_MODEL);
    let up = gw.mock.requests().await;
    assert_eq!(up[0]["path"], "chat");
    assert_eq!(up[0]["model"], V1_MODEL);
    assert_eq!(
        up[0]["azure"],
        json!({ "api_key": "upstream-secret-key", "api_version": null, "deployment": null })
    );
    assert_eq!(up[0]["authorization"], "", "no bearer token to Azure");
    gw.settled(1).await;
    let call = gw.last_call().await;
    assert_eq!(call["upstream_kind"], "azure");

    // Deployment URLs: the deployment in the path, the channel's api-version in the query.
    let res = gw
        .post(
            "/v1/chat/completions",
            json!({ "model": "gpt-dep", "messages": hello(), "stream": true }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let text = res.text().await.expect("stream");
    assert!(text.contains("\"model\":\"gpt-dep\""), "{text}");
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    let up = gw.mock.requests().await;
    assert_eq!(
        up[1]["azure"],
        json!({ "api_key": "upstream-secret-key", "api_version": API_VERSION, "deployment": DEPLOYMENT })
    );
    assert_eq!(up[1]["include_usage"], true);
    gw.settled(2).await;
    // The upstream's reasoning tokens are counted apart.
    let call = gw.last_call().await;
    assert_eq!(
        (&call["reasoning_tokens"], &call["usage_source"]),
        (&json!(2), &json!("upstream")),
        "{call}"
    );

    // The Responses API natively, on both.
    for (model, version) in [(V1_MODEL, Value::Null), ("gpt-dep", json!(API_VERSION))] {
        let res = gw
            .post(
                "/v1/responses",
                json!({ "model": model, "input": "hello there world", "max_output_tokens": 20 }),
            )
            .await;
        assert_eq!(res.status(), 200, "{model}");
        let body: Value = res.json().await.expect("json");
        assert_eq!(body["object"], "response");
        assert_eq!(body["model"], model);
        let up = gw.mock.requests().await;
        let last = up.last().expect("a request");
        assert_eq!(last["path"], "responses");
        assert_eq!(last["azure"]["api_version"], version);
        assert_eq!(last["body"]["max_output_tokens"], 20);
    }

    // Embeddings at the deployment URL.
    let res = gw
        .post(
            "/v1/embeddings",
            json!({ "model": EMBED_DEPLOYMENT, "input": ["a", "b"] }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["data"].as_array().map(Vec::len), Some(2));
    let up = gw.mock.requests().await;
    assert_eq!(
        up.last().expect("a request")["azure"]["deployment"],
        EMBED_DEPLOYMENT
    );

    // Claude Code's Messages, converted over Azure's chat (which takes max_completion_tokens).
    let res = TestApp::bare_client()
        .post(gw.app.url("/v1/messages"))
        .header("x-api-key", &gw.key)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({ "model": "gpt-dep", "max_tokens": 30,
                        "messages": [{ "role": "user", "content": "hello there world" }] }))
        .send()
        .await
        .expect("messages");
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["type"], "message");
    assert_eq!(body["content"][0]["text"], "Hello from the mock upstream.");
    let up = gw.mock.requests().await;
    let last = up.last().expect("a request");
    assert_eq!(last["path"], "chat");
    assert_eq!(last["azure"]["deployment"], DEPLOYMENT);
    assert_eq!(last["body"]["max_completion_tokens"], 30);
    gw.settled(6).await;
    let charged: i64 = gw
        .scalar("SELECT CAST(SUM(cost) AS BIGINT) FROM usage_logs WHERE user_id = $1")
        .await;
    assert!(charged > 0);
    assert_eq!(gw.balance().await, 1_000_000 - charged);

    // The channel's test speaks to the deployment URL too.
    let dep = gw.admin_channel("azure-deployments").await;
    assert_eq!(
        (&dep["kind"], &dep["api_version"]),
        (&json!("azure"), &json!(API_VERSION))
    );
    let probe = gw.test_channel("azure-deployments", DEPLOYMENT).await;
    assert_eq!(
        (&probe["ok"], &probe["status"]),
        (&json!(true), &json!(200))
    );
    let up = gw.mock.requests().await;
    assert_eq!(
        up.last().expect("a request")["azure"]["deployment"],
        DEPLOYMENT
    );
    gw.stop().await;
}

async fn an_api_version_is_azures_alone_and_checked(backend: Backend) {
    let gw = Gw::start(backend, "1", |_, _| {}).await;
    let base = resource(&gw.mock, "");
    for (kind, version, status) in [
        ("openai-compatible", "2024-10-21", 400),
        ("azure", "2024 10 21", 400),
        ("azure", "x".repeat(33).as_str(), 400),
        ("azure", "2025-04-01-preview", 201),
    ] {
        let res = TestApp::bare_client()
            .post(gw.app.url("/api/admin/channels"))
            .bearer_auth(ADMIN_TOKEN)
            .json(
                &json!({ "name": format!("c-{kind}-{}", version.len()), "kind": kind,
                           "base_url": base, "api_version": version, "models": ["m"] }),
            )
            .send()
            .await
            .expect("create");
        assert_eq!(res.status(), status, "{kind} {version}");
        let body: Value = res.json().await.expect("json");
        if status == 400 {
            assert_eq!(body["error"]["param"], "api_version", "{body}");
        } else {
            assert_eq!(body["api_version"], version);
        }
    }
    gw.stop().await;
}
