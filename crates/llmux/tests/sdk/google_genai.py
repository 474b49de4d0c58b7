"""The official google-genai Python SDK against llmux's Gemini API ingress.

Run by crates/llmux/tests/sdk.rs with LLMUX_BASE_URL, LLMUX_MODEL (a chat alias on some vendor),
LLMUX_EMBED_MODEL (an embedding alias) and LLMUX_API_KEY (a gateway key, which the SDK sends as
x-goog-api-key) set. Each check prints what it did; a failure is an
AssertionError naming the check, or the SDK's own exception.
"""
import base64
import os

from google import genai
from google.genai import errors, types
from pydantic import BaseModel

BASE = os.environ["LLMUX_BASE_URL"]
MODEL = os.environ["LLMUX_MODEL"]
EMBED_MODEL = os.environ["LLMUX_EMBED_MODEL"]
KEY = os.environ.get("LLMUX_API_KEY", "unused-by-llmux")

# The SDK's default API version (v1 in the 3.x line) and v1beta, which Gemini CLI and older SDKs use.
client = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=BASE))
beta = genai.Client(api_key=KEY,
                    http_options=types.HttpOptions(base_url=BASE, api_version="v1beta"))


def check(name, condition, detail):
    assert condition, f"[{MODEL}] {name}: {detail}"
    print(f"  ok {name}")


print(f"google-genai {genai.__version__} on {MODEL}")

# Text, with a system instruction and generation settings.
config = types.GenerateContentConfig(system_instruction="be brief", temperature=0.2, top_p=0.9,
                                     max_output_tokens=256, stop_sequences=["STOP!"])
response = client.models.generate_content(model=MODEL, contents="hello gemini sdk", config=config)
check("generate_content text", response.text == "hello gemini sdk", response)
check("generate_content finish reason",
      response.candidates[0].finish_reason == types.FinishReason.STOP, response.candidates[0])
check("generate_content model version", response.model_version == MODEL, response.model_version)
check("generate_content usage", response.usage_metadata.prompt_token_count > 0
      and response.usage_metadata.total_token_count > 0, response.usage_metadata)
response = beta.models.generate_content(model=MODEL, contents="hello v1beta")
check("generate_content on v1beta", response.text == "hello v1beta", response)

# Streamed text (the SDK asks for ?alt=sse).
chunks = list(client.models.generate_content_stream(model=MODEL, contents="stream me please sdk"))
text = "".join(chunk.text or "" for chunk in chunks)
check("generate_content_stream text", text == "stream me please sdk", chunks)
check("generate_content_stream finish",
      chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP, chunks[-1])

# Function calling round trip, with the SDK's automatic function calling off.
weather = types.FunctionDeclaration(
    name="get_weather",
    description="Weather for a city",
    parameters=types.Schema(type=types.Type.OBJECT,
                            properties={"text": types.Schema(type=types.Type.STRING)},
                            required=["text"]),
)
tool_config = types.GenerateContentConfig(
    tools=[types.Tool(function_declarations=[weather])],
    automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
)
question = types.Content(role="user", parts=[types.Part.from_text(text="weather in Paris")])
first = client.models.generate_content(model=MODEL, contents=[question], config=tool_config)
calls = first.function_calls or []
check("function call", len(calls) == 1 and calls[0].name == "get_weather", first)
check("function call args", calls[0].args == {"text": "weather in Paris"}, calls[0].args)
answer = types.Part.from_function_response(name="get_weather", response={"temperature": 21})
answer.function_response.id = calls[0].id
follow_up = client.models.generate_content(
    model=MODEL,
    contents=[question, first.candidates[0].content, types.Content(role="user", parts=[answer])],
    config=tool_config,
)
check("function response answered", "Tool result received" in (follow_up.text or ""), follow_up)

# The same call, streamed: the SDK assembles the call from the chunks.
streamed_calls = [call for chunk in client.models.generate_content_stream(
    model=MODEL, contents="weather in Oslo", config=tool_config) for call in (chunk.function_calls or [])]
check("streamed function call", [c.name for c in streamed_calls] == ["get_weather"]
      and streamed_calls[0].args == {"text": "weather in Oslo"}, streamed_calls)

# Image input beside text.
png = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
response = client.models.generate_content(model=MODEL, contents=[
    types.Part.from_bytes(data=png, mime_type="image/png"), "describe this image"])
check("image input", response.text == "describe this image", response)


# JSON schema output. The mock echoes the prompt, so the prompt is the JSON it should return.
class Weather(BaseModel):
    city: str
    temperature: int


schema_config = types.GenerateContentConfig(response_mime_type="application/json",
                                            response_schema=Weather)
response = client.models.generate_content(
    model=MODEL, contents='{"city": "Paris", "temperature": 21}', config=schema_config)
check("json schema output", response.parsed == Weather(city="Paris", temperature=21), response)
json_config = types.GenerateContentConfig(
    response_mime_type="application/json",
    response_json_schema={"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"]})
response = client.models.generate_content(model=MODEL, contents='{"city": "Bern"}', config=json_config)
check("response_json_schema output", response.parsed == {"city": "Bern"}, response)

# countTokens.
count = client.models.count_tokens(model=MODEL, contents="count these few words please")
check("count_tokens", count.total_tokens > 0, count)

# Embeddings (the SDK sends batchEmbedContents, one request per content).
embedded = client.models.embed_content(model=EMBED_MODEL, contents=["first text", "second text"],
                                       config=types.EmbedContentConfig(output_dimensionality=16,
                                                                       task_type="RETRIEVAL_DOCUMENT"))
vectors = [e.values for e in embedded.embeddings]
check("embed_content batch", len(vectors) == 2 and all(len(v) == 16 for v in vectors)
      and vectors[0] != vectors[1], embedded)
single = client.models.embed_content(model=EMBED_MODEL, contents="one text")
check("embed_content single", len(single.embeddings) == 1 and len(single.embeddings[0].values) > 0,
      single)

# A wrong key is refused in Google's envelope (when the gateway checks keys).
if KEY != "unused-by-llmux":
    wrong = genai.Client(api_key="sk-wrong-key-0123456789", http_options=types.HttpOptions(base_url=BASE))
    try:
        wrong.models.generate_content(model=MODEL, contents="x")
    except errors.ClientError as error:
        check("wrong key refused", error.code == 401 and error.status == "UNAUTHENTICATED", error)
    else:
        raise AssertionError(f"[{MODEL}] a wrong key was accepted")

# Errors come back in Google's envelope, which the SDK raises as ClientError.
try:
    client.models.generate_content(model=MODEL, contents="x",
                                   config=types.GenerateContentConfig(candidate_count=2))
except errors.ClientError as error:
    check("error envelope", error.code == 400 and error.status == "INVALID_ARGUMENT", error)
else:
    raise AssertionError(f"[{MODEL}] candidate_count=2 was not refused")

print(f"google-genai sdk ok: {MODEL}")
