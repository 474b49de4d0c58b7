"""The official OpenAI Python SDK against llmux's /v1/responses (and /v1/chat/completions).

Run by crates/llmux/tests/sdk.rs with LLMUX_BASE_URL and LLMUX_MODEL set. Exits non-zero (an
AssertionError or an SDK exception) when anything a real client relies on is wrong.
"""
import json
import os

from openai import OpenAI

client = OpenAI(base_url=os.environ["LLMUX_BASE_URL"] + "/v1", api_key="unused-by-llmux")
model = os.environ["LLMUX_MODEL"]
tools = [{
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
}]

# Non-streamed text.
response = client.responses.create(model=model, input="hello from the sdk", instructions="be brief")
assert response.status == "completed", response
assert response.output_text == "hello from the sdk", response.output_text
assert response.model == model, response.model
assert response.usage.input_tokens > 0

# Non-streamed function call, then its result in a second turn through previous_response_id.
first = client.responses.create(model=model, input="weather in Oslo", tools=tools)
calls = [item for item in first.output if item.type == "function_call"]
assert len(calls) == 1, first.output
assert json.loads(calls[0].arguments) == {"text": "weather in Oslo"}, calls[0].arguments
second = client.responses.create(
    model=model,
    previous_response_id=first.id,
    tools=tools,
    input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": "{\"temp\": 3}"}],
)
assert second.status == "completed", second
assert "Tool result received" in second.output_text, second.output_text

# Streamed text: the SDK parses every event into its typed models.
text = ""
completed = None
with client.responses.stream(model=model, input="stream these words") as stream:
    for event in stream:
        if event.type == "response.output_text.delta":
            text += event.delta
        if event.type == "response.completed":
            completed = event.response
assert text == "stream these words", text
assert completed is not None and completed.status == "completed"

# Streamed function call.
arguments = ""
with client.responses.stream(model=model, input="weather in Lima", tools=tools) as stream:
    for event in stream:
        if event.type == "response.function_call_arguments.delta":
            arguments += event.delta
    final = stream.get_final_response()
assert json.loads(arguments) == {"text": "weather in Lima"}, arguments
assert any(item.type == "function_call" for item in final.output)

# Chat Completions, streamed, with the SDK's own accumulator.
chunks = list(client.chat.completions.create(model=model, messages=[{"role": "user", "content": "chat works"}], stream=True))
assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "chat works"
assert all(c.model == model for c in chunks)
print("openai sdk ok:", model)
