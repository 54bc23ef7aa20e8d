//! The binary itself: a wrong config stops it with exit code 2 and names the key; SIGTERM stops
//! it cleanly.

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn temp_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tollgate-cfg-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

fn run_with(config: &str, env: &[(&str, &str)]) -> (i32, String) {
    let dir = temp_dir();
    let path = dir.join("config.yaml");
    std::fs::write(&path, config).expect("write config");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
    cmd.arg("--config")
        .arg(&path)
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run tollgate");
    let _ = std::fs::remove_dir_all(&dir);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn an_unknown_key_exits_2_and_names_it() {
    let (code, err) = run_with("server:\n  prot: 9701\n", &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("prot"), "{err}");
    let (code, err) = run_with("", &[("TOLLGATE__DATABASE__PASSWORD", "x")]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("database.password") || err.contains("password"),
        "{err}"
    );
}

#[test]
fn a_bad_value_exits_2_and_names_the_key() {
    let (code, err) = run_with("server:\n  port: not-a-port\n", &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("server.port"), "{err}");
    let (code, err) = run_with("", &[("TOLLGATE__LOG__RETENTION_DAYS", "-3")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("log.retention_days"), "{err}");
    let (code, err) = run_with("log:\n  format: xml\n", &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("log.format"), "{err}");
}

#[test]
fn sigterm_stops_the_server_cleanly_and_the_admin_password_is_shown_once() {
    let dir = temp_dir();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let start = |dir: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .current_dir(dir)
            .env("TOLLGATE__SERVER__PORT", port.to_string())
            .env(
                "TOLLGATE__DATABASE__URL",
                format!("sqlite://{}", dir.join("t.db").display()),
            )
            .env("TOLLGATE__LOG__DIR", dir.join("logs").display().to_string())
            .env("TOLLGATE__LOG__FORMAT", "json")
            .env_remove("TOLLGATE_ADMIN_PASSWORD")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn")
    };
    let wait_ready = || {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server did not start");
    };
    let stop = |child: &mut std::process::Child| {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(code) = child.try_wait().expect("wait") {
                return code;
            }
            assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    // One start and SIGTERM the moment the port accepts (a handler installed only after the
    // port opened lets the signal kill the process instead of draining it): a clean exit, and
    // what the server printed.
    let start_and_stop = |round: u32| {
        let mut child = start(&dir);
        wait_ready();
        let code = stop(&mut child);
        assert!(code.success(), "round {round}: {code:?}");
        let mut out = String::new();
        child
            .stdout
            .take()
            .expect("stdout")
            .read_to_string(&mut out)
            .expect("read");
        out
    };
    let out = start_and_stop(0);
    assert!(out.contains("created the first administrator"), "{out}");
    // Later starts on the same database: no new password is printed.
    for round in 1..=5 {
        let out = start_and_stop(round);
        assert!(!out.contains("created the first administrator"), "{out}");
    }
    // The daily file log was written.
    let files: Vec<_> = std::fs::read_dir(dir.join("logs"))
        .expect("log dir")
        .collect();
    assert!(!files.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}
