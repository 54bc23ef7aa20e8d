//! `/api/openapi.json`: generated from the router itself. Every documented operation is served
//! (none answers with the fallback), every route the issue lists is documented with its schemas
//! and errors, and the console's `/docs` page renders it on the server.

use crate::common::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_every_route_and_each_is_served() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let res = reqwest::get(app.url("/api/openapi.json"))
        .await
        .expect("doc");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    let doc: Value = res.json().await.expect("json");
    assert!(doc["openapi"].as_str().expect("version").starts_with("3."));
    let paths = doc["paths"].as_object().expect("paths");
    for (path, methods) in [
        ("/v1/chat/completions", &["post"][..]),
        ("/v1/completions", &["post"]),
        ("/v1/embeddings", &["post"]),
        ("/v1/models", &["get"]),
        ("/v1/models/{model}", &["get"]),
        ("/v1/dashboard/billing/subscription", &["get"]),
        ("/v1/dashboard/billing/usage", &["get"]),
        ("/v1/credits", &["get"]),
        ("/api/pricing", &["get"]),
        ("/api/about", &["get"]),
        ("/api/redeem", &["get", "post"]),
        ("/api/logs", &["get"]),
        ("/api/usage", &["get"]),
        ("/api/openapi.json", &["get"]),
        ("/api/admin/users", &["get", "post"]),
        ("/api/admin/users/{id}", &["get", "patch", "delete"]),
        ("/api/admin/users/{id}/status", &["post"]),
        ("/api/admin/users/{id}/password", &["post"]),
        ("/api/admin/users/{id}/balance", &["post"]),
        ("/api/admin/users/{id}/ledger", &["get"]),
        ("/api/admin/keys", &["get", "post"]),
        ("/api/admin/keys/{id}", &["delete"]),
        ("/api/admin/keys/{id}/status", &["post"]),
        ("/api/admin/channels", &["get", "post"]),
        ("/api/admin/channels/{id}", &["put", "delete"]),
        ("/api/admin/model-mappings", &["get"]),
        ("/api/admin/model-mappings/{model}", &["put", "delete"]),
        ("/api/admin/prices", &["get"]),
        ("/api/admin/prices/{model}", &["put", "delete"]),
        ("/api/admin/groups", &["get"]),
        ("/api/admin/groups/{name}", &["put", "delete"]),
        ("/api/admin/logs", &["get"]),
        ("/api/admin/redeem-codes", &["get", "post"]),
        ("/api/admin/redeem-codes/{id}/void", &["post"]),
        ("/api/admin/redeem-batches", &["get"]),
        ("/api/admin/redeem-batches/{id}/void", &["post"]),
        ("/api/admin/profile", &["get"]),
        ("/api/me/alerts", &["get", "put"]),
        ("/api/admin/alerts", &["get", "put"]),
    ] {
        let item = paths
            .get(path)
            .unwrap_or_else(|| panic!("{path} is not documented"));
        for m in methods {
            let op = &item[*m];
            assert!(op.is_object(), "{m} {path} is not documented");
            assert!(
                op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{m} {path}"
            );
            let responses = op["responses"].as_object().expect("responses");
            if path != "/api/about" && path != "/api/openapi.json" {
                assert!(
                    responses.iter().any(|(status, r)| status.starts_with('4')
                        && r.to_string().contains("#/components/schemas/ErrorBody")),
                    "{m} {path} documents its errors"
                );
            }
        }
    }
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for name in [
        "ErrorBody",
        "Alerts",
        "AlertSettings",
        "AlertView",
        "UsageRow",
        "LedgerRow",
        "UserInfo",
        "UserPatch",
        "KeyView",
        "NewKey",
        "ChannelInput",
        "PriceConfig",
        "NewRedeemBatch",
        "CreatedRedeemBatch",
        "RedeemCodeView",
        "RedeemCheck",
        "Redeemed",
        "BillingSubscription",
        "BillingUsage",
        "CreditSummary",
        "Pricing",
        "About",
        "GroupView",
    ] {
        assert!(schemas.contains_key(name), "schema {name}");
    }
    // Money fields are USD strings in the schemas.
    assert_eq!(schemas["UsageRow"]["properties"]["cost"]["type"], "string");
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"]["scheme"],
        "bearer"
    );

    // Every documented operation is routed: without credentials it answers anything but the
    // fallback's 404 or a 405.
    let client = TestApp::bare_client();
    let mut checked = 0;
    for (path, item) in paths {
        let concrete = path
            .replace("{id}", "1")
            .replace("{model}", "gpt-x")
            .replace("{name}", "gold");
        for (method, _) in item.as_object().expect("item") {
            let res = client
                .request(
                    method.to_uppercase().parse().expect("method"),
                    app.url(&concrete),
                )
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .expect("request");
            let status = res.status().as_u16();
            let body = res.text().await.unwrap_or_default();
            assert_ne!(status, 405, "{method} {path}");
            assert!(
                !(status == 404 && body.contains("unknown endpoint")),
                "{method} {path} is documented but not routed"
            );
            checked += 1;
        }
    }
    assert!(checked >= 44, "{checked} operations");

    // The console renders it on the server (no script needed).
    let page = reqwest::get(app.url("/docs")).await.expect("docs page");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(html.contains("/api/admin/redeem-codes"));
    assert!(html.contains("data-testid=\"operation\""));
    // What the search looks in: the path and the summary, lower case.
    assert!(
        html.contains("data-search=\"/api/admin/redeem-codes/{id}/void\nvoids an unused code\"")
    );
    assert!(html.contains(">Responses</h3>"));
    // Drawn in the reader's language, each language once (the second answer is the cached one).
    for _ in 0..2 {
        let zh = reqwest::Client::new()
            .get(app.url("/docs"))
            .header("accept-language", "zh-CN,zh;q=0.9")
            .send()
            .await
            .expect("docs page");
        let zh = zh.text().await.expect("html");
        assert!(zh.contains(">响应</h3>"), "the Chinese reference");
        assert!(!zh.contains(">Responses</h3>"));
    }
    let again = reqwest::get(app.url("/docs")).await.expect("docs page");
    assert!(
        again
            .text()
            .await
            .expect("html")
            .contains(">Responses</h3>")
    );
    app.stop().await;
}
