"""The official Anthropic Python SDK against llmux's /v1/messages.

Run by crates/llmux/tests/sdk.rs with LLMUX_BASE_URL and LLMUX_MODEL set.
"""
import os

import anthropic

client = anthropic.Anthropic(base_url=os.environ["LLMUX_BASE_URL"], api_key="unused-by-llmux")
model = os.environ["LLMUX_MODEL"]
tools = [{
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
}]

message = client.messages.create(model=model, max_tokens=256, system="be brief",
                                 messages=[{"role": "user", "content": "hello claude sdk"}])
assert message.content[0].text == "hello claude sdk", message
assert message.stop_reason == "end_turn", message.stop_reason
assert message.model == model
assert message.usage.input_tokens > 0

tool_message = client.messages.create(model=model, max_tokens=256, tools=tools,
                                      messages=[{"role": "user", "content": "weather in Bern"}])
assert tool_message.stop_reason == "tool_use", tool_message
tool_use = next(block for block in tool_message.content if block.type == "tool_use")
assert tool_use.input == {"text": "weather in Bern"}, tool_use.input

# A second turn with the tool result, as Claude Code sends it.
follow_up = client.messages.create(model=model, max_tokens=256, tools=tools, messages=[
    {"role": "user", "content": "weather in Bern"},
    {"role": "assistant", "content": [block.model_dump() for block in tool_message.content]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use.id, "content": "sunny"}]},
])
assert "Tool result received" in follow_up.content[0].text, follow_up

# Streaming with tools: the SDK's accumulator must rebuild the tool input from input_json_delta.
with client.messages.stream(model=model, max_tokens=256, tools=tools,
                            messages=[{"role": "user", "content": "weather in Oslo"}]) as stream:
    for _ in stream:
        pass
    final = stream.get_final_message()
assert final.stop_reason == "tool_use", final
streamed_tool = next(block for block in final.content if block.type == "tool_use")
assert streamed_tool.input == {"text": "weather in Oslo"}, streamed_tool.input
assert final.usage.output_tokens > 0

with client.messages.stream(model=model, max_tokens=256,
                            messages=[{"role": "user", "content": "stream text please"}]) as stream:
    text = "".join(stream.text_stream)
assert text == "stream text please", text

count = client.messages.count_tokens(model=model, messages=[{"role": "user", "content": "count me"}])
assert count.input_tokens > 0
print("anthropic sdk ok:", model)
