"""The official `anthropic` Python client against a running Tollgate, as Claude Code calls it
(driven by server/tests/it/python.rs): Messages through an Anthropic channel and, converted,
through an OpenAI-compatible one; streams, tools over two turns, token counting, errors."""
import os

import anthropic

base = os.environ["TOLLGATE_BASE_URL"].removesuffix("/v1")
key = os.environ["TOLLGATE_API_KEY"]
claude, agent = os.environ["TOLLGATE_CLAUDE"], os.environ["TOLLGATE_AGENT"]
# The agent model's output tokens per answer (its thinking included where the provider counts it apart).
agent_output = int(os.environ.get("TOLLGATE_AGENT_OUTPUT", "6"))
client = anthropic.Anthropic(base_url=base, api_key=key, max_retries=0)
ask = [{"role": "user", "content": "hello there world"}]
passed = 0

# Through the Anthropic channel, plain and streamed.
reply = client.messages.create(model=claude, max_tokens=64, messages=ask)
assert reply.content[0].text == "Hello from the mock upstream.", reply
assert reply.model == claude and reply.stop_reason == "end_turn", reply
assert (reply.usage.input_tokens, reply.usage.output_tokens) == (3, 6), reply.usage
passed += 1

with client.messages.stream(model=claude, max_tokens=64, messages=ask) as stream:
    text = "".join(stream.text_stream)
    final = stream.get_final_message()
assert text == "Hello from the mock upstream.", text
assert final.usage.output_tokens == 6 and final.stop_reason == "end_turn", final
passed += 1

# Claude Code with ANTHROPIC_AUTH_TOKEN: the key as a Bearer token.
bearer = anthropic.Anthropic(base_url=base, auth_token=key, max_retries=0)
assert bearer.messages.create(model=claude, max_tokens=8, messages=ask).content[0].text
passed += 1

# Tools over two turns through the OpenAI-compatible channel (converted both ways).
tools = [{"name": "get_weather", "description": "The weather in a city",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
first = client.messages.create(model=agent, max_tokens=64, messages=ask, tools=tools)
assert first.stop_reason == "tool_use", first
call = next(b for b in first.content if b.type == "tool_use")
assert (call.name, call.input) == ("get_weather", {"city": "Paris"}), call
thinking = next(b for b in first.content if b.type == "thinking")
assert thinking.thinking == "Thinking it over.", thinking
turn2 = ask + [
    {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}]},
]
with client.messages.stream(model=agent, max_tokens=64, messages=turn2, tools=tools) as stream:
    final = stream.get_final_message()
streamed = next(b for b in final.content if b.type == "tool_use")
assert streamed.input == {"city": "Paris"}, final.content
assert [b.type for b in final.content] == ["thinking", "text", "tool_use"], final.content
assert final.usage.output_tokens == agent_output and final.usage.cache_read_input_tokens == 2, final.usage
# A chat stream tells its usage at its end: the converted `message_start` says 0 input tokens,
# and `message_delta` the real count, which the SDK takes into the final message.
assert final.usage.input_tokens > 0, final.usage
passed += 1

# Token counting: exact through Anthropic, estimated (and said so) otherwise.
count = client.messages.with_raw_response.count_tokens(model=claude, messages=ask)
assert count.headers["x-tollgate-token-count"] == "exact", count.headers
assert count.parse().input_tokens == 3
estimate = client.messages.with_raw_response.count_tokens(model=agent, messages=ask, tools=tools)
assert estimate.headers["x-tollgate-token-count"] == "estimate", estimate.headers
assert estimate.parse().input_tokens > 3
passed += 1

# Errors in Anthropic's shape, which the SDK turns into its own exceptions.
try:
    anthropic.Anthropic(base_url=base, api_key="sk-not-a-real-key", max_retries=0).messages.create(
        model=claude, max_tokens=8, messages=ask)
    raise SystemExit("a bad key was accepted")
except anthropic.AuthenticationError as err:
    assert err.status_code == 401 and err.body["error"]["type"] == "authentication_error", err.body
try:
    client.messages.create(model=agent, max_tokens=8,
                           messages=[{"role": "user", "content": [{"type": "document", "source": {
                               "type": "text", "media_type": "text/plain", "data": "x"}}]}])
    raise SystemExit("a block chat cannot carry was accepted")
except anthropic.BadRequestError as err:
    assert "document" in err.body["error"]["message"], err.body
passed += 1

print(f"anthropic client: {passed} passed, 0 failed")
