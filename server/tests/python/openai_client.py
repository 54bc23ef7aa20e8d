"""The official `openai` Python client against a running Tollgate (driven by server/tests/it/python.rs)."""
import os

from openai import AuthenticationError, OpenAI, RateLimitError

base = os.environ["TOLLGATE_BASE_URL"]
key = os.environ["TOLLGATE_API_KEY"]
client = OpenAI(base_url=base, api_key=key, max_retries=0)
messages = [{"role": "user", "content": "hello there world"}]

reply = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
assert reply.choices[0].message.content == "Hello from the mock upstream.", reply
assert reply.model == "gpt-4o-mini", reply.model
assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (3, 6), reply.usage

text, usage = "", None
for chunk in client.chat.completions.create(
    model="gpt-4o-mini", messages=messages, stream=True, stream_options={"include_usage": True}
):
    if chunk.choices:
        text += chunk.choices[0].delta.content or ""
    if chunk.usage:
        usage = chunk.usage
assert text == "Hello from the mock upstream.", text
assert usage is not None and usage.completion_tokens == 6, usage

emb = client.embeddings.create(model="text-embedding-3-small", input="one two three")
assert len(emb.data[0].embedding) == 8, emb
assert emb.usage.prompt_tokens == 3, emb.usage

models = [m.id for m in client.models.list()]
assert "gpt-4o-mini" in models, models

bad = OpenAI(base_url=base, api_key="sk-not-a-real-key", max_retries=0)
try:
    bad.chat.completions.create(model="gpt-4o-mini", messages=messages)
    raise SystemExit("a bad key was accepted")
except AuthenticationError as err:
    assert err.status_code == 401, err
    assert err.body["type"] == "authentication_error", err.body

# A key of 2 requests per minute: the SDK reads OpenAI's rate-limit headers, then a 429.
limited = OpenAI(base_url=base, api_key=os.environ["TOLLGATE_LIMITED_KEY"], max_retries=0)
for left in ("1", "0"):
    raw = limited.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=messages)
    assert raw.headers["x-ratelimit-limit-requests"] == "2", raw.headers
    assert raw.headers["x-ratelimit-remaining-requests"] == left, raw.headers
    assert raw.headers["x-ratelimit-reset-requests"].endswith("s"), raw.headers
    assert raw.parse().choices[0].message.content == "Hello from the mock upstream."
try:
    limited.chat.completions.create(model="gpt-4o-mini", messages=messages)
    raise SystemExit("a third call in the minute was accepted")
except RateLimitError as err:
    assert err.status_code == 429, err
    assert 1 <= int(err.response.headers["retry-after"]) <= 60, err.response.headers
    assert err.body["code"] == "rate_limit_exceeded", err.body

print("openai client: 6 passed, 0 failed")
