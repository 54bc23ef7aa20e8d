//! The repo's mock upstream, run as its own process.

use serde_json::Value;
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};

pub struct Mock {
    pub base: String,
    child: Option<Child>,
}

impl Mock {
    pub fn start() -> Mock {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mock-upstream"))
            .arg("--port")
            .arg("0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mock-upstream");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("mock address");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .expect("listening line")
            .to_string();
        Mock {
            base: format!("http://{addr}"),
            child: Some(child),
        }
    }

    /// A handle on a mock that another `Mock` runs (for building URLs only).
    pub fn with_base(v1_url: &str) -> Mock {
        Mock {
            base: v1_url.trim_end_matches("/v1").to_string(),
            child: None,
        }
    }

    /// A base URL for a channel whose requests get these directives (e.g. `status=503`).
    pub fn url(&self, directives: &str) -> String {
        if directives.is_empty() {
            format!("{}/v1", self.base)
        } else {
            format!("{}/m/{directives}/v1", self.base)
        }
    }

    /// Streams being sent now and the most at once: `(in_flight, peak)`.
    pub async fn peak(&self) -> (u64, u64) {
        let v: Value = reqwest::get(format!("{}/_mock/peak", self.base))
            .await
            .expect("mock peak")
            .json()
            .await
            .expect("json");
        (
            v["in_flight"].as_u64().expect("in flight"),
            v["peak"].as_u64().expect("peak"),
        )
    }

    pub async fn requests(&self) -> Vec<Value> {
        reqwest::get(format!("{}/_mock/requests", self.base))
            .await
            .expect("mock log")
            .json()
            .await
            .expect("json")
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
