"""The official `openai` Python client's Responses API against a running Tollgate, as Codex calls
it (driven by server/tests/it/python.rs): through an `openai` channel as is and, converted,
through an OpenAI-compatible one; streams, function calls over two turns, stored responses
continued."""
import json
import os

from openai import BadRequestError, OpenAI

client = OpenAI(base_url=os.environ["TOLLGATE_BASE_URL"], api_key=os.environ["TOLLGATE_API_KEY"], max_retries=0)
codex, agent = os.environ["TOLLGATE_CODEX"], os.environ["TOLLGATE_AGENT"]
passed = 0

# Through the openai channel, as it came.
reply = client.responses.create(model=codex, input="hello there world", max_output_tokens=32)
assert reply.output_text == "Hello from the mock upstream.", reply
assert reply.model == codex and reply.usage.output_tokens == 6, reply
passed += 1

text, final = "", None
with client.responses.stream(model=codex, input="hello there world") as stream:
    for event in stream:
        if event.type == "response.output_text.delta":
            text += event.delta
    final = stream.get_final_response()
assert text == "Hello from the mock upstream.", text
assert final.status == "completed" and final.usage.output_tokens == 6, final
passed += 1

# Function calls over two turns through the OpenAI-compatible channel (converted both ways).
tools = [{"type": "function", "name": "get_weather", "description": "The weather in a city",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
first = client.responses.create(model=agent, instructions="Be brief.", input="weather in Paris?", tools=tools)
call = next((item for item in first.output if item.type == "function_call"), None)
assert call is not None, first.output
assert (call.name, json.loads(call.arguments)) == ("get_weather", {"city": "Paris"}), call
assert first.output_text == "Hello from the mock upstream.", first.output_text
passed += 1

turn2 = [{"role": "user", "content": "weather in Paris?"}] + [
    item.model_dump(exclude_none=True) for item in first.output if item.type != "reasoning"
] + [{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}]
with client.responses.stream(model=agent, input=turn2, tools=tools) as stream:
    kinds = [event.type for event in stream]
    final = stream.get_final_response()
assert kinds[0] == "response.created" and kinds[-1] == "response.completed", kinds
assert "response.function_call_arguments.done" in kinds, kinds
streamed = next(item for item in final.output if item.type == "function_call")
assert json.loads(streamed.arguments) == {"city": "Paris"}, final.output
assert final.usage.input_tokens_details.cached_tokens == 2, final.usage
passed += 1

# A stored response continued: through the channel that stores it (the openai one), its context
# billed as input again; where the agent's channel converts to chat, refused by name.
again = client.responses.create(model=codex, input="and then?", previous_response_id=reply.id)
assert again.usage.input_tokens == reply.usage.input_tokens + reply.usage.output_tokens + 2, again.usage
passed += 1

if os.environ.get("TOLLGATE_AGENT_STORES") == "1":
    more = client.responses.create(model=agent, input="and then?", previous_response_id=first.id)
    assert more.usage.input_tokens > first.usage.input_tokens, more.usage
else:
    try:
        client.responses.create(model=agent, input="hi", previous_response_id=first.id)
        raise SystemExit("previous_response_id was accepted on a converting channel")
    except BadRequestError as err:
        assert err.body["param"] == "previous_response_id", err.body
passed += 1

print(f"codex client: {passed} passed, 0 failed")
