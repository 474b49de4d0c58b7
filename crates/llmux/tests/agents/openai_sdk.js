// The official OpenAI Node SDK against llmux: Chat Completions and Responses, whole and
// streamed, and a function call. Env: LLMUX_BASE_URL, LLMUX_MODEL; NODE_PATH holds the SDK.
// Exits non-zero with the reason on the first wrong answer.
'use strict';
const assert = require('node:assert/strict');
const { OpenAI } = require('openai');

const model = process.env.LLMUX_MODEL;
const client = new OpenAI({
  baseURL: `${process.env.LLMUX_BASE_URL}/v1`,
  apiKey: 'sk-fake-node-sdk-key-0123456789',
  maxRetries: 0,
  timeout: 20000,
});

async function chat() {
  const prompt = `Chat with ${model} from the OpenAI Node SDK. mock:text`;
  const completion = await client.chat.completions.create({
    model,
    messages: [{ role: 'user', content: prompt }],
  });
  assert.equal(completion.model, model, 'the answer names the model asked for');
  assert.equal(completion.choices[0].message.content, prompt);
  assert.equal(completion.choices[0].finish_reason, 'stop');
  assert.ok(completion.usage.total_tokens > 0, 'usage is reported');
}

async function chatStream() {
  const prompt = `Stream ${model} from the OpenAI Node SDK. mock:text`;
  const stream = await client.chat.completions.create({
    model,
    messages: [{ role: 'user', content: prompt }],
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let chunks = 0;
  let usage = null;
  for await (const chunk of stream) {
    chunks += 1;
    assert.equal(chunk.model, model);
    text += chunk.choices[0]?.delta?.content ?? '';
    usage = chunk.usage ?? usage;
  }
  assert.equal(text, prompt);
  assert.ok(chunks > 2, `the answer arrived in pieces (${chunks} chunks)`);
  assert.ok(usage && usage.completion_tokens > 0, 'the usage chunk was asked for and came');
}

async function chatTool() {
  const completion = await client.chat.completions.create({
    model,
    messages: [{ role: 'user', content: 'Weather in Paris? mock:call get_weather {"city": "Paris"}' }],
    tools: [{
      type: 'function',
      function: {
        name: 'get_weather',
        parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
      },
    }],
  });
  const [call] = completion.choices[0].message.tool_calls;
  assert.equal(completion.choices[0].finish_reason, 'tool_calls');
  assert.equal(call.function.name, 'get_weather');
  assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris' });
  const followUp = await client.chat.completions.create({
    model,
    messages: [
      { role: 'user', content: 'Weather in Paris?' },
      completion.choices[0].message,
      { role: 'tool', tool_call_id: call.id, content: 'sunny, 21 degrees' },
    ],
  });
  // Gemini wraps a text result as {"result": …}; the result itself must arrive.
  const ack = followUp.choices[0].message.content;
  assert.ok(ack.startsWith('Tool result received: ') && ack.includes('sunny, 21 degrees'), ack);
}

async function responses() {
  const prompt = `Respond with ${model} from the OpenAI Node SDK. mock:text`;
  const response = await client.responses.create({ model, input: prompt });
  assert.equal(response.status, 'completed');
  assert.equal(response.output_text, prompt);
  const stream = client.responses.stream({ model, input: prompt });
  let deltas = '';
  stream.on('response.output_text.delta', (event) => { deltas += event.delta; });
  const final = await stream.finalResponse();
  assert.equal(deltas, prompt);
  assert.equal(final.output_text, prompt);
}

(async () => {
  for (const check of [chat, chatStream, chatTool, responses]) {
    await check();
    console.log(`openai node sdk on ${model}: ${check.name} ok`);
  }
})().catch((err) => {
  console.error(`openai node sdk on ${model}: ${err.stack || err}`);
  process.exit(1);
});
