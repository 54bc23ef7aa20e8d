use super::*;
use crate::secret::SecretString;

#[test]
fn a_lease_of_zero_seconds_is_refused() {
    let e = load("billing:\n  sweep_after_seconds: 0\n", &[]).expect_err("zero lease");
    assert_eq!(e.key, "billing.sweep_after_seconds");
    let e = load("billing:\n  min_lowered_max_tokens: 0\n", &[]).expect_err("no bound");
    assert_eq!(e.key, "billing.min_lowered_max_tokens");
    let e = load("billing:\n  stored_input_hold_tokens: 0\n", &[]).expect_err("no hold");
    assert_eq!(e.key, "billing.stored_input_hold_tokens");
    for key in ["max_invalid_keys_per_ip", "invalid_key_window_seconds"] {
        let e = load(&format!("auth:\n  {key}: 0\n"), &[]).expect_err("zero");
        assert_eq!(e.key, format!("auth.{key}"));
    }
    let e = load("gateway:\n  allow_metadata_upstreams: maybe\n", &[]).expect_err("a bool");
    assert_eq!(e.key, "gateway.allow_metadata_upstreams");
}

#[test]
fn prices_are_parsed_once_and_kept() {
    let c = load(
        "pricing:\n  m: { input_per_1m: \"0.15\", output_per_1m: \"0.6\" }\n",
        &[],
    )
    .expect("valid");
    let first: *const _ = c.prices().expect("prices");
    let again: *const _ = c.prices().expect("prices");
    assert_eq!(first, again, "the parse made at validation is reused");
    assert_eq!(c.prices().expect("prices")["m"].rates.input_per_1m, 150_000);
}

/// The config files the repository ships load as they are (with their `${…}` set).
#[test]
fn the_shipped_config_files_load() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    for file in ["config.yaml", "config.prd.yaml"] {
        let text = std::fs::read_to_string(dir.join(file)).expect("shipped config");
        let c = Config::from_sources(Some(&text), Vec::new(), |name| {
            Some(match name {
                "TOLLGATE_DATABASE_URL" => "postgres://u@db/tollgate".to_string(),
                "TOLLGATE_REDIS_URL" => "redis://redis:6379".to_string(),
                _ => format!("value-of-{name}"),
            })
        })
        .unwrap_or_else(|e| panic!("{file}: {}: {}", e.key, e.message));
        assert!(!c.gateway.allow_metadata_upstreams, "{file}");
        assert_eq!(c.billing.sweep_after_seconds, 15, "{file}");
    }
}

fn load(yaml: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let vars: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let lookup = |name: &str| {
        env.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    };
    Config::from_sources(Some(yaml), vars.clone(), lookup)
}

#[test]
fn defaults_need_no_file() {
    let c = Config::from_sources(None, Vec::new(), |_| None).expect("defaults are valid");
    assert_eq!(c.server.port, 9701);
    assert_eq!(c.database.url.expose(), "sqlite://data/tollgate.db");
    assert!(c.redis.url.is_empty());
    assert!(!c.auth.allow_registration);
}

#[test]
fn environment_overrides_the_file() {
    let c = load(
        "server:\n  port: 9000\n",
        &[
            ("TOLLGATE__SERVER__PORT", "9801"),
            ("TOLLGATE__LOG__FORMAT", "json"),
        ],
    )
    .expect("valid");
    assert_eq!(c.server.port, 9801);
    assert_eq!(c.log.format, LogFormat::Json);
}

#[test]
fn limits_are_read_from_the_file_and_the_environment_and_checked() {
    let c = load(
        "limits:\n  default_tpm: 50000\n  groups:\n    vip: { rpm: 600 }\n",
        &[("TOLLGATE__LIMITS__DEFAULT_RPM", "60")],
    )
    .expect("valid");
    assert_eq!(c.limits.default_rpm, Some(60));
    assert_eq!(c.limits.default_tpm, Some(50_000));
    assert_eq!(c.limits.groups["vip"].rpm, Some(600));
    assert_eq!(c.limits.groups["vip"].tpm, None);
    let e = load("limits:\n  groups:\n    vip: { tpm: 0 }\n", &[]).expect_err("zero");
    assert_eq!(e.key, "limits.groups.vip.tpm");
    let e = load("limits:\n  default_rpm: 0\n", &[]).expect_err("zero");
    assert_eq!(e.key, "limits.default_rpm");
    let c = load(
        "limits:\n  default_max_concurrent: 4\n  concurrency_lease_seconds: 5\n  groups:\n    vip: { max_concurrent: 8 }\n",
        &[],
    )
    .expect("valid");
    assert_eq!(
        (
            c.limits.default_max_concurrent,
            c.limits.concurrency_lease_seconds
        ),
        (Some(4), 5)
    );
    assert_eq!(c.limits.groups["vip"].max_concurrent, Some(8));
    for (yaml, key) in [
        (
            "limits:\n  default_max_concurrent: 0\n",
            "limits.default_max_concurrent",
        ),
        (
            "limits:\n  concurrency_lease_seconds: 0\n",
            "limits.concurrency_lease_seconds",
        ),
        (
            "limits:\n  groups:\n    vip: { max_concurrent: 0 }\n",
            "limits.groups.vip.max_concurrent",
        ),
    ] {
        assert_eq!(load(yaml, &[]).expect_err("zero").key, key);
    }
    let e = load("limits:\n  groups:\n    vip: { burst: 5 }\n", &[]).expect_err("unknown");
    assert!(
        e.key.contains("burst") || e.message.contains("burst"),
        "{e:?}"
    );
}

#[test]
fn unknown_key_is_named() {
    let e = load("server:\n  prot: 1\n", &[]).expect_err("unknown key");
    assert!(e.to_string().contains("prot"), "{e}");
    let e = load("", &[("TOLLGATE__SERVER__BOGUS", "1")]).expect_err("unknown env key");
    assert!(e.to_string().contains("bogus"), "{e}");
}

#[test]
fn bad_value_is_named() {
    let e = load("server:\n  port: high\n", &[]).expect_err("bad value");
    assert_eq!(e.key, "server.port");
    let e = load("", &[("TOLLGATE__SERVER__PORT", "99999")]).expect_err("out of range");
    assert_eq!(e.key, "server.port");
    let e = load("database:\n  url: mongodb://x\n", &[]).expect_err("scheme");
    assert_eq!(e.key, "database.url");
    for url in [
        "mysql://u@db/tollgate",
        "mariadb://u@db/tollgate",
        "postgresql://u@db/t",
    ] {
        load(&format!("database:\n  url: {url}\n"), &[]).expect(url);
    }
}

#[test]
fn jobs_storage_and_retention_are_read_and_checked() {
    let c = load(
        "jobs:\n  cleanup: { enabled: false }\n  retention: { schedule: \"0 0 1 * * *\" }\n",
        &[("TOLLGATE__JOBS__BACKUP__ENABLED", "false")],
    )
    .expect("valid");
    assert!(!c.jobs.cleanup.enabled);
    assert_eq!(
        c.jobs.cleanup.schedule(),
        "0 */15 * * * *",
        "the default stays"
    );
    assert!(c.jobs.retention.enabled);
    assert_eq!(c.jobs.retention.schedule(), "0 0 1 * * *");
    assert!(!c.jobs.backup.enabled);
    assert_eq!(c.jobs.channel_probe.schedule(), "0 */5 * * * *");
    let e = load("jobs:\n  cleanup: { schedule: \"every hour\" }\n", &[]).expect_err("cron");
    assert_eq!(e.key, "jobs.cleanup.schedule");
    let e = load("jobs:\n  nightly: { schedule: \"* * * * *\" }\n", &[]).expect_err("unknown job");
    assert!(e.key.starts_with("jobs"), "{}", e.key);
    let e = load("storage:\n  kind: s3\n  s3: { bucket: b }\n", &[]).expect_err("credentials");
    assert_eq!(e.key, "storage.s3.access_key_id");
    let e = load(
            "storage:\n  kind: s3\n  s3: { bucket: b, access_key_id: a, secret_access_key: s, endpoint: \"ftp://x\" }\n",
            &[],
        )
        .expect_err("endpoint");
    assert_eq!(e.key, "storage.s3.endpoint");
    for (text, key) in [
        ("retention:\n  usage_days: 0\n", "retention.usage_days"),
        ("retention:\n  batch_rows: 20000\n", "retention.batch_rows"),
        (
            "retention:\n  job_runs_days: 0\n",
            "retention.job_runs_days",
        ),
        ("backup:\n  keep: 0\n", "backup.keep"),
        (
            "redeem:\n  idempotency_hours: 0\n",
            "redeem.idempotency_hours",
        ),
    ] {
        assert_eq!(load(text, &[]).expect_err(text).key, key);
    }
}

#[test]
fn interpolates_environment_into_strings() {
    let c = load("admin:\n  api_token: \"${TOKEN}\"\n", &[("TOKEN", "t-123")]).expect("valid");
    assert!(c.admin.api_token.matches("t-123"));
    let e = load("admin:\n  api_token: \"${MISSING}\"\n", &[]).expect_err("missing var");
    assert_eq!(e.key, "admin.api_token");
}

#[test]
fn gateway_sections_follow_the_contract() {
    let yaml = r#"
channels:
  - { name: openai-main, base_url: "https://api.example.com/v1", api_key: "${OPENAI_KEY}",
      models: [gpt-4o-mini, text-embedding-3-small], priority: 0, weight: 1 }
  - { name: vip-only, base_url: "https://vip.example.com/v1", models: [gpt-4o], groups: [vip, team.a] }
model_mapping:
  deepseek-chat: [deepseek-chat, hs-deepseek-v3-250324]
pricing:
  gpt-4o-mini: { input_per_1m: "0.15", output_per_1m: "0.60", cached_input_per_1m: "0.075" }
admin:
  api_token: "${TOLLGATE_ADMIN_TOKEN}"
"#;
    let c = load(
        yaml,
        &[("OPENAI_KEY", "sk-up"), ("TOLLGATE_ADMIN_TOKEN", "adm")],
    )
    .expect("valid");
    assert_eq!(
        c.channels[0].api_key.as_ref().map(SecretString::expose),
        Some("sk-up")
    );
    assert_eq!(
        c.channels[0].models,
        ["gpt-4o-mini", "text-embedding-3-small"]
    );
    assert!(c.channels[0].groups.is_empty(), "every group by default");
    assert_eq!(c.channels[1].groups, ["vip", "team.a"]);
    assert_eq!(
        c.model_mapping["deepseek-chat"],
        ["deepseek-chat", "hs-deepseek-v3-250324"]
    );
    let p = c.pricing["gpt-4o-mini"]
        .parse("gpt-4o-mini")
        .expect("price");
    assert_eq!(
        (
            p.rates.input_per_1m,
            p.rates.output_per_1m,
            p.rates.cached_input_per_1m
        ),
        (150_000, 600_000, 75_000)
    );
}

#[test]
fn bad_prices_and_channels_are_named() {
    let e = load(
        "pricing:\n  m: { input_per_1m: \"0.1234567\", output_per_1m: \"1\" }\n",
        &[],
    )
    .expect_err("precision");
    assert_eq!(e.key, "pricing.m.input_per_1m");
    let e = load("channels:\n  - { name: a, base_url: \"ftp://x\" }\n", &[]).expect_err("scheme");
    assert_eq!(e.key, "channels[0].base_url");
    let e = load(
        "channels:\n  - { name: a, base_url: \"http://x\", groups: [vip, \"a b\"] }\n",
        &[],
    )
    .expect_err("group name");
    assert_eq!(e.key, "channels[0].groups");
    assert_eq!(parse_multiplier("k", "1.5"), Ok(1500));
    assert!(parse_multiplier("k", "1.0005").is_err());
}

#[test]
fn every_dimension_and_tier_parses_and_bad_tiers_are_named() {
    let yaml = r#"
pricing:
  claude:
    input_per_1m: "3"
    output_per_1m: "15"
    cached_input_per_1m: "0.30"
    cache_write_5m_per_1m: "3.75"
    cache_write_1h_per_1m: "6"
    reasoning_per_1m: "20"
    image_input_per_1m: "4"
    image_output_per_1m: "40"
    audio_input_per_1m: "5"
    audio_output_per_1m: "50"
    per_request: "0.001"
    max_output_tokens: 64000
    tiers:
      - { above_tokens: 200000, input_per_1m: "6", output_per_1m: "22.5" }
      - { above_tokens: 1000000, input_per_1m: "9", output_per_1m: "30", cache_write_1h_per_1m: "18" }
"#;
    let c = load(yaml, &[]).expect("valid");
    let p = &c.prices().expect("prices")["claude"];
    let r = p.rates.charged();
    assert_eq!(
        [
            r.input,
            r.output,
            r.cache_read,
            r.cache_write_5m,
            r.cache_write_1h,
            r.reasoning,
            r.image_input,
            r.image_output,
            r.audio_input,
            r.audio_output
        ],
        [
            3_000_000, 15_000_000, 300_000, 3_750_000, 6_000_000, 20_000_000, 4_000_000,
            40_000_000, 5_000_000, 50_000_000
        ]
    );
    assert_eq!((p.per_request, p.max_output_tokens), (1000, Some(64_000)));
    // A tier's unset rates fall back within the tier, never to the base's or to zero.
    let t = p.tiers[0].rates.charged();
    assert_eq!(
        (t.cache_read, t.cache_write_1h, t.reasoning, t.audio_output),
        (6_000_000, 6_000_000, 22_500_000, 22_500_000)
    );
    assert_eq!(p.tiers[1].rates.charged().cache_write_1h, 18_000_000);
    // The highest tier the context is above; exactly at a threshold is not above it.
    assert_eq!(p.rates_for(200_000).input_per_1m, 3_000_000);
    assert_eq!(p.rates_for(200_001).input_per_1m, 6_000_000);
    assert_eq!(p.rates_for(1_000_000).input_per_1m, 6_000_000);
    assert_eq!(p.rates_for(1_000_001).input_per_1m, 9_000_000);

    for (body, key) in [
        (
            r#"{ input_per_1m: "1", output_per_1m: "1", tiers: [{ input_per_1m: "2", output_per_1m: "2" }] }"#,
            "pricing.m.tiers[0].above_tokens",
        ),
        (
            r#"{ input_per_1m: "1", output_per_1m: "1", tiers: [{ above_tokens: 10, input_per_1m: "2", output_per_1m: "2" }, { above_tokens: 10, input_per_1m: "3", output_per_1m: "3" }] }"#,
            "pricing.m.tiers[1].above_tokens",
        ),
        (
            r#"{ input_per_1m: "1", output_per_1m: "1", tiers: [{ above_tokens: 10, input_per_1m: "2", output_per_1m: "2", per_request: "1" }] }"#,
            "pricing.m.tiers[0].per_request",
        ),
        (
            r#"{ input_per_1m: "1", output_per_1m: "1", tiers: [{ above_tokens: 10, input_per_1m: "2", output_per_1m: "-2" }] }"#,
            "pricing.m.tiers[0].output_per_1m",
        ),
        (
            r#"{ input_per_1m: "1", output_per_1m: "1", above_tokens: 5 }"#,
            "pricing.m.above_tokens",
        ),
        (
            r#"{ input_per_1m: "1", output_per_1m: "1", max_output_tokens: 0 }"#,
            "pricing.m.max_output_tokens",
        ),
        (
            r#"{ input_per_1m: "1", output_per_1m: "1", reasoning_per_1m: "0.0000001" }"#,
            "pricing.m.reasoning_per_1m",
        ),
    ] {
        let e = load(&format!("pricing:\n  m: {body}\n"), &[]).expect_err(key);
        assert_eq!(e.key, key, "{body}");
    }
    let e = load(
        "pricing:\n  m: { input_per_1m: \"1\", output_per_1m: \"1\", cache_write_per_1m: \"1\" }\n",
        &[],
    )
    .expect_err("unknown");
    assert!(e.to_string().contains("cache_write_per_1m"), "{e}");
}

#[test]
fn override_text_that_looks_like_yaml_stays_a_string() {
    let c = load("", &[("TOLLGATE__SERVER__HOST", "a: b")]).expect("valid");
    assert_eq!(c.server.host, "a: b");
}

#[test]
fn a_group_multiplier_is_parsed_when_the_config_loads() {
    let c = load("billing:\n  group_multipliers: { vip: \"0.8\" }\n", &[]).expect("valid");
    assert_eq!(c.billing.group_multipliers["vip"].milli(), 800);
    let e = load("billing:\n  group_multipliers: { vip: \"0.0001\" }\n", &[])
        .expect_err("four decimal places");
    assert_eq!(e.key, "billing.group_multipliers.vip");
    assert!(e.message.contains("at most 3 decimal places"), "{e}");
}

/// The deployment files (`compose.yaml` and what it mounts, the Kubernetes manifests,
/// `.dockerignore`) are checked here, since no container engine runs on the machines that test
/// this: each parses, everything it names exists, and the configs it carries load with the
/// environment it gives them.
#[test]
fn the_deployment_files_hold_together() {
    use serde::Deserialize as _;
    use serde_norway::Value;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let read =
        |p: &str| std::fs::read_to_string(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    let ignore = read(".dockerignore");
    for entry in [".git", "data/", "logs/", "target/", "node_modules"] {
        assert!(ignore.lines().any(|l| l.trim() == entry), "{entry}");
    }

    // compose.yaml: the five services; every file it mounts from the repository exists; the
    // gateway's config loads with the environment the file gives it.
    let compose: Value = serde_norway::from_str(&read("compose.yaml")).expect("compose.yaml");
    let services = compose["services"].as_mapping().expect("services");
    for name in ["tollgate", "postgres", "redis", "prometheus", "grafana"] {
        assert!(services.contains_key(name), "service {name}");
    }
    let mut mounted = Vec::new();
    for service in services.values() {
        for volume in service["volumes"].as_sequence().into_iter().flatten() {
            let volume = volume.as_str().expect("a volume");
            if let Some(local) = volume.strip_prefix("./") {
                let (path, target) = local.split_once(':').expect("host:container");
                assert!(
                    root.join(path).exists(),
                    "{path} is mounted but does not exist"
                );
                mounted.push((path.to_string(), target.to_string()));
            }
        }
    }
    let config_file = mounted
        .iter()
        .find(|(_, target)| target.starts_with("/etc/tollgate/config.yaml"))
        .map(|(path, _)| path.clone())
        .expect("the gateway's config is mounted");
    let env = services[&Value::from("tollgate")]["environment"]
        .as_mapping()
        .expect("environment");
    let given = |name: &str| env.contains_key(name);
    let c = Config::from_sources(Some(&read(&config_file)), Vec::new(), |name| {
        given(name).then(|| match name {
            "TOLLGATE_DATABASE_URL" => "postgres://tollgate:p@postgres:5432/tollgate".into(),
            "TOLLGATE_PUBLIC_URL" => "http://localhost:9701".into(),
            _ => format!("value-of-{name}"),
        })
    })
    .unwrap_or_else(|e| panic!("{config_file}: {}: {}", e.key, e.message));
    assert!(
        c.redis.url.expose().contains("redis:6379"),
        "the compose file's Redis"
    );
    assert!(
        given("TOLLGATE_ADMIN_PASSWORD"),
        "the first administrator's password"
    );
    let prometheus: Value =
        serde_norway::from_str(&read("deploy/prometheus.yml")).expect("prometheus.yml");
    assert_eq!(
        prometheus["rule_files"][0].as_str(),
        Some("/etc/prometheus/alerts.yml")
    );
    assert!(
        mounted
            .iter()
            .any(|(p, t)| p == "deploy/alerts.yml" && t.starts_with("/etc/prometheus/alerts.yml")),
        "the alert rules are mounted where Prometheus reads them"
    );

    // The Kubernetes example: a Secret, the config, a Deployment probed on /readyz and /healthz
    // at the config's port, a Service to it; every secret the pods read is in the Secret.
    let text = read("deploy/kubernetes.yaml");
    let docs: Vec<Value> = serde_norway::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).expect("a manifest"))
        .collect();
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    assert_eq!(kinds, ["Secret", "ConfigMap", "Deployment", "Service"]);
    let secret = docs[0]["stringData"].as_mapping().expect("stringData");
    let container = &docs[2]["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["readinessProbe"]["httpGet"]["path"].as_str(),
        Some("/readyz")
    );
    assert_eq!(
        container["livenessProbe"]["httpGet"]["path"].as_str(),
        Some("/healthz")
    );
    let mut pod_env = Vec::new();
    for var in container["env"].as_sequence().expect("env") {
        let key = &var["valueFrom"]["secretKeyRef"]["key"];
        assert!(secret.contains_key(key), "{key:?} is not in the Secret");
        pod_env.push(var["name"].as_str().expect("a name").to_string());
    }
    let c = Config::from_sources(
        docs[1]["data"]["config.yaml"].as_str(),
        Vec::new(),
        |name| {
            pod_env.iter().any(|v| v == name).then(|| match name {
                "TOLLGATE_DATABASE_URL" => "postgres://u@db/tollgate".into(),
                "TOLLGATE_REDIS_URL" => "redis://redis:6379".into(),
                _ => format!("value-of-{name}"),
            })
        },
    )
    .unwrap_or_else(|e| panic!("the ConfigMap's config: {}: {}", e.key, e.message));
    assert_eq!(
        container["ports"][0]["containerPort"].as_u64(),
        Some(u64::from(c.server.port))
    );
    assert_eq!(
        docs[3]["spec"]["ports"][0]["targetPort"],
        container["ports"][0]["name"]
    );
    assert_eq!(
        docs[3]["spec"]["selector"],
        docs[2]["spec"]["template"]["metadata"]["labels"]
    );
}

#[test]
fn alerts_delivery_is_read_from_the_file_and_the_environment_and_checked() {
    let c = load(
        "alerts:\n  webhook_timeout_seconds: 5\n  max_attempts: 3\n  retry_base_seconds: 2\n  \
         allow_private_webhooks: true\n  smtp:\n    host: smtp.example.com\n    port: 465\n    \
         tls: tls\n    username: tollgate\n    from: \"Tollgate <alerts@example.com>\"\n\
         jobs:\n  alerts:\n    schedule: \"*/10 * * * * *\"\n",
        &[("TOLLGATE__ALERTS__SMTP__PASSWORD", "from-env")],
    )
    .expect("valid");
    let a = &c.alerts;
    assert_eq!(
        (
            a.webhook_timeout_seconds,
            a.max_attempts,
            a.retry_base_seconds
        ),
        (5, 3, 2)
    );
    assert!(a.allow_private_webhooks);
    assert!(a.smtp.enabled());
    assert_eq!((a.smtp.port, a.smtp.tls), (465, SmtpTls::Tls));
    assert_eq!(a.smtp.password.expose(), "from-env");
    assert_eq!(c.jobs.alerts.schedule(), "*/10 * * * * *");
    let defaults = load("", &[]).expect("defaults");
    assert!(!defaults.alerts.smtp.enabled());
    assert_eq!(defaults.alerts.smtp.tls, SmtpTls::Starttls);
    assert!(!defaults.alerts.allow_private_webhooks);
    for (yaml, key) in [
        ("alerts:\n  max_attempts: 0\n", "alerts.max_attempts"),
        ("alerts:\n  max_attempts: 51\n", "alerts.max_attempts"),
        (
            "alerts:\n  webhook_timeout_seconds: 0\n",
            "alerts.webhook_timeout_seconds",
        ),
        (
            "alerts:\n  retry_base_seconds: 0\n",
            "alerts.retry_base_seconds",
        ),
        ("alerts:\n  smtp:\n    host: h\n", "alerts.smtp.from"),
        (
            "alerts:\n  smtp:\n    host: h\n    from: not an address\n",
            "alerts.smtp.from",
        ),
        (
            "alerts:\n  smtp:\n    host: h\n    from: a@b.example\n    username: u\n",
            "alerts.smtp.username",
        ),
        (
            "alerts:\n  smtp:\n    host: h\n    from: a@b.example\n    port: 0\n",
            "alerts.smtp.port",
        ),
        ("alerts:\n  smtp:\n    tls: ssl\n", "alerts.smtp.tls"),
        ("alerts:\n  surprise: 1\n", "alerts"),
    ] {
        let e = load(yaml, &[]).expect_err(yaml);
        assert!(e.key.starts_with(key), "{yaml}: {e}");
    }
}
