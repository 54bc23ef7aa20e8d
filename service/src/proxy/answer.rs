//! A non-stream answer: read to its end (each piece within the channel's idle timeout of the
//! last), settled, and passed on with the model named as the client asked.

use super::request::{concat, quoted};
use super::settle::Call;
use super::sse::{self, UpstreamUsage};
use super::without_url;
use super::{
    Endpoint, Mode, ProxyBody, ProxyResponse, UpstreamFailure, anthropic, bound, convert, responses,
};
use crate::Error;
use crate::routing::Candidate;
use bytes::Bytes;
use serde_json::Value;
use std::time::{Duration, Instant};

/// The whole body, each piece within `idle` of the last (a long answer that keeps coming is
/// never cut by a deadline on the whole); `None` when it went silent.
async fn read_body(mut resp: reqwest::Response, idle: Duration) -> Option<reqwest::Result<Bytes>> {
    // The usual answer comes in one piece, passed on without a copy.
    let mut first: Option<Bytes> = None;
    let mut more = bytes::BytesMut::new();
    loop {
        match super::wait::within(idle, resp.chunk()).await? {
            Err(e) => return Some(Err(e)),
            Ok(None) => {
                return Some(Ok(match first {
                    None => Bytes::new(),
                    Some(b) if more.is_empty() => b,
                    Some(b) => {
                        let mut body = bytes::BytesMut::with_capacity(b.len() + more.len());
                        body.extend_from_slice(&b);
                        body.extend_from_slice(&more);
                        body.freeze()
                    }
                }));
            }
            Ok(Some(b)) if first.is_none() => first = Some(b),
            Ok(Some(b)) => more.extend_from_slice(&b),
        }
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "the answer's parts, each read once"
)]
pub(super) async fn complete_response(
    call: Call,
    resp: reqwest::Response,
    cand: &Candidate,
    endpoint: Endpoint,
    model: &str,
    mut upstream: Duration,
    mode: Mode,
    echo: Option<&responses::Echo>,
) -> Result<ProxyResponse, Error> {
    let reading = Instant::now();
    let body = read_body(resp, cand.channel.idle_timeout).await;
    upstream += reading.elapsed();
    let bytes = match body {
        Some(Ok(b)) => b,
        Some(Err(e)) => {
            tracing::warn!(channel = %cand.channel.name, error = %without_url(&e), "upstream body failed");
            return Err(Error::Upstream {
                failure: UpstreamFailure::BadGateway,
                message: "the upstream response was cut".into(),
            });
        }
        None => {
            tracing::warn!(channel = %cand.channel.name, "upstream body stalled");
            return Err(Error::Upstream {
                failure: UpstreamFailure::Timeout,
                message: "the upstream stopped sending its answer".into(),
            });
        }
    };
    // A Gemini channel's answer, as chat.
    let bytes = if cand.channel.kind == types::ChannelKind::Gemini {
        super::gemini::answer(&bytes).ok_or_else(invalid_answer)?
    } else {
        bytes
    };
    let (usage, text, body) = match mode {
        Mode::Chat | Mode::Responses => read_response(&bytes, model)?,
        Mode::Messages => anthropic::read_answer(&bytes, model).ok_or_else(invalid_answer)?,
        Mode::ChatToMessages | Mode::ChatToResponses => {
            let chat: Value = serde_json::from_slice(&bytes).map_err(|_| invalid_answer())?;
            let usage = sse::usage_of(&chat);
            let mut text = String::new();
            if usage.is_none() {
                sse::append_text(&chat, &mut text);
            }
            let answer = if mode == Mode::ChatToMessages {
                convert::chat_answer_to_message(&chat, model)
            } else {
                let default = responses::Echo::default();
                responses::chat_answer_to_response(
                    &chat,
                    model,
                    echo.unwrap_or(&default),
                    crate::now_ms() / 1000,
                )
            };
            let body = Bytes::from(serde_json::to_vec(&answer).map_err(anyhow::Error::from)?);
            (usage, text, body)
        }
    };
    let usage = usage.map(|u| {
        if endpoint == Endpoint::Embeddings {
            UpstreamUsage { completion: 0, ..u }
        } else {
            u
        }
    });
    // An upstream that answered past the bound it was sent: cut back to it, as a stream is.
    let over = match usage {
        Some(u) => u.completion > call.bound,
        None => text.len() as u64 > call.bound,
    };
    let body = if over && endpoint != Endpoint::Embeddings {
        cut_to_bound(&call.svc, mode, model, call.bound, body).await
    } else {
        body
    };
    let ttft = call.started.elapsed();
    call.settle(usage, &text, true, None, Some(ttft));
    Ok(ProxyResponse {
        body: ProxyBody::Json(body),
        upstream,
        lowered: None,
    })
}

/// The answer cut to `bound` output tokens on the token-counting thread ([`bound::cut_answer`]),
/// or as it came when nothing of it is past the bound by the gateway's count (the excess may be
/// reasoning the answer does not show).
async fn cut_to_bound(
    svc: &crate::Services,
    mode: Mode,
    model: &str,
    bound: u64,
    body: Bytes,
) -> Bytes {
    let protocol = match mode {
        Mode::Chat => bound::Protocol::Chat,
        Mode::Messages | Mode::ChatToMessages => bound::Protocol::Messages,
        Mode::Responses | Mode::ChatToResponses => bound::Protocol::Responses,
    };
    let model = model.to_string();
    let answer = body.clone();
    let cut = svc
        .with_tokenizer(move |t| {
            let mut v: Value = serde_json::from_slice(&answer).ok()?;
            let count = |s: &str| t.count(&model, s);
            if !bound::cut_answer(&mut v, protocol, bound, &count) {
                return None;
            }
            serde_json::to_vec(&v).ok().map(Bytes::from)
        })
        .await
        .flatten();
    if cut.is_some() {
        tracing::warn!(
            bound,
            "the upstream answered past the output bound; the answer was cut there"
        );
    }
    cut.unwrap_or(body)
}

fn invalid_answer() -> Error {
    Error::Upstream {
        failure: UpstreamFailure::BadGateway,
        message: "the upstream sent an invalid response".into(),
    }
}

/// An upstream's answer to a non-stream call: its usage, the text it generated when it reports
/// no usage (to count), and the body for the client, naming the model the client asked for. The
/// usual answer is read without building a document and goes out as it came, or with only its
/// model's name replaced (an embedding's thousands of numbers are neither parsed nor written
/// again); any other shape is read as a `Value`.
fn read_response(
    bytes: &Bytes,
    model: &str,
) -> Result<(Option<UpstreamUsage>, String, Bytes), Error> {
    let mut text = String::new();
    if let Ok(chunk) = serde_json::from_slice::<sse::Chunk<'_>>(bytes) {
        let usage = chunk.usage();
        if usage.is_none() {
            chunk.append_text(&mut text);
        }
        let name = quoted(model);
        let body = match chunk.model_span(bytes) {
            Some(span) if bytes[span.clone()] != *name.as_bytes() => {
                concat(&[&bytes[..span.start], name.as_bytes(), &bytes[span.end..]])
            }
            _ => bytes.clone(),
        };
        return Ok((usage, text, body));
    }
    let Ok(mut v) = serde_json::from_slice::<Value>(bytes) else {
        return Err(invalid_answer());
    };
    let usage = sse::usage_of(&v);
    sse::append_text(&v, &mut text);
    if let Some(m) = v.get_mut("model") {
        *m = Value::String(model.to_string());
    }
    let body = Bytes::from(serde_json::to_vec(&v).map_err(anyhow::Error::from)?);
    Ok((usage, text, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_goes_out_as_it_came_with_only_the_model_renamed() {
        let answer = br#"{"id":"c","model":"up-model","choices":[{"message":{"content":"Hi \"x\""}}],"usage":{"prompt_tokens":3,"completion_tokens":2}}"#;
        let (usage, text, body) =
            read_response(&Bytes::from_static(answer), "pub").expect("an answer");
        assert_eq!(usage.map(|u| (u.prompt, u.completion)), Some((3, 2)));
        assert!(text.is_empty(), "text is only gathered to count it");
        assert_eq!(
            &body[..],
            &br#"{"id":"c","model":"pub","choices":[{"message":{"content":"Hi \"x\""}}],"usage":{"prompt_tokens":3,"completion_tokens":2}}"#[..]
        );
        // Numbers stay as written: nothing is parsed into floats and written again.
        let embedding = Bytes::from_static(
            br#"{"object":"list","data":[{"embedding":[0.10000000000000001,1e-7,-0.0]}],"model":"pub","usage":{"prompt_tokens":1,"total_tokens":1}}"#,
        );
        let (_, _, body) = read_response(&embedding, "pub").expect("an answer");
        assert_eq!(body, embedding);
        // No usage: the text is gathered for counting.
        let (usage, text, _) = read_response(
            &Bytes::from_static(br#"{"choices":[{"text":"a"},{"message":{"content":"b"}}]}"#),
            "pub",
        )
        .expect("an answer");
        assert_eq!((usage, text.as_str()), (None, "ab"));
        // Another shape is read as a document, and still renamed.
        let (_, _, body) = read_response(
            &Bytes::from_static(br#"{"model":"up","choices":[{"message":{"content":[{"type":"text","text":"a"}]}}]}"#),
            "pub",
        )
        .expect("an answer");
        let v: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(v["model"], "pub");
        assert!(read_response(&Bytes::from_static(b"{not json"), "pub").is_err());
    }
}
