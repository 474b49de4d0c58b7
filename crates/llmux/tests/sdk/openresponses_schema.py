"""Validates llmux's /v1/responses output against the Open Responses schema, using the typed
models of the `openresponses-types` package (an implementation independent of llmux).

Every non-streamed resource must parse as `ResponseResource`; every streamed event must parse as
the model for its `type`. Run by crates/llmux/tests/sdk.rs with LLMUX_BASE_URL and LLMUX_MODEL.
"""
import json
import os
import urllib.request

import openresponses_types as spec

BASE = os.environ["LLMUX_BASE_URL"]
MODEL = os.environ["LLMUX_MODEL"]
EVENTS = {
    "response.created": spec.ResponseCreatedStreamingEvent,
    "response.in_progress": spec.ResponseInProgressStreamingEvent,
    "response.completed": spec.ResponseCompletedStreamingEvent,
    "response.incomplete": spec.ResponseIncompleteStreamingEvent,
    "response.failed": spec.ResponseFailedStreamingEvent,
    "response.output_item.added": spec.ResponseOutputItemAddedStreamingEvent,
    "response.output_item.done": spec.ResponseOutputItemDoneStreamingEvent,
    "response.content_part.added": spec.ResponseContentPartAddedStreamingEvent,
    "response.content_part.done": spec.ResponseContentPartDoneStreamingEvent,
    "response.output_text.delta": spec.ResponseOutputTextDeltaStreamingEvent,
    "response.output_text.done": spec.ResponseOutputTextDoneStreamingEvent,
    "response.function_call_arguments.delta": spec.ResponseFunctionCallArgumentsDeltaStreamingEvent,
    "response.function_call_arguments.done": spec.ResponseFunctionCallArgumentsDoneStreamingEvent,
    "error": spec.ErrorStreamingEvent,
}
TOOLS = [{"type": "function", "name": "get_weather", "description": "weather",
          "parameters": {"type": "object", "properties": {"text": {"type": "string"}}}}]


def without_echoed_schema(resource):
    """openresponses-types types `text.format.schema` as null in the resource (its generator
    renders the spec's open `schema` object that way), while OpenAI and the spec's examples echo
    the schema the client sent, as llmux does. Only that one field is relaxed."""
    fmt = (resource.get("text") or {}).get("format") or {}
    if fmt.get("type") == "json_schema":
        fmt["schema"] = None
    return resource


def post(body):
    request = urllib.request.Request(BASE + "/v1/responses", data=json.dumps(body).encode(),
                                     headers={"content-type": "application/json"})
    return urllib.request.urlopen(request)


for body in [
    {"model": MODEL, "input": "validate me"},
    {"model": MODEL, "input": "weather in Oslo", "tools": TOOLS, "metadata": {"k": "v"}},
    {"model": MODEL, "input": [{"role": "user", "content": [{"type": "input_text", "text": "items"}]}],
     "instructions": "be brief", "temperature": 0.5, "max_output_tokens": 100,
     "text": {"format": {"type": "json_schema", "name": "r", "schema": {"type": "object"}}}},
]:
    resource = json.load(post(body))
    spec.ResponseResource.model_validate(without_echoed_schema(resource))

    stream_body = dict(body, stream=True)
    seen = []
    with post(stream_body) as response:
        for raw in response.read().decode().split("\n\n"):
            if not raw.strip():
                continue
            data = [line[6:] for line in raw.split("\n") if line.startswith("data: ")]
            assert len(data) == 1, raw
            if data[0] == "[DONE]":
                continue
            event = json.loads(data[0])
            if "response" in event:
                without_echoed_schema(event["response"])
            model = EVENTS.get(event["type"])
            assert model is not None, "unexpected event type " + event["type"]
            model.model_validate(event)
            seen.append(event["type"])
    assert seen[0] == "response.created" and seen[-1] == "response.completed", seen
print("open responses schema ok:", MODEL)
