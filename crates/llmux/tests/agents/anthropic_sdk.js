// The official Anthropic Node SDK against llmux's Messages API: whole and streamed answers and
// a tool round trip. Env: LLMUX_BASE_URL, LLMUX_MODEL; NODE_PATH holds the SDK. Exits non-zero
// with the reason on the first wrong answer.
'use strict';
const assert = require('node:assert/strict');
const { Anthropic } = require('@anthropic-ai/sdk');

const model = process.env.LLMUX_MODEL;
const client = new Anthropic({
  baseURL: process.env.LLMUX_BASE_URL,
  apiKey: 'sk-ant-fake-node-sdk-key-0123456789',
  maxRetries: 0,
  timeout: 20000,
});

async function message() {
  const prompt = `Message ${model} from the Anthropic Node SDK. mock:text`;
  const answer = await client.messages.create({
    model,
    max_tokens: 256,
    messages: [{ role: 'user', content: prompt }],
  });
  assert.equal(answer.model, model, 'the answer names the model asked for');
  assert.equal(answer.stop_reason, 'end_turn');
  assert.deepEqual(answer.content.map((b) => b.text), [prompt]);
  assert.ok(answer.usage.output_tokens > 0, 'usage is reported');
}

async function stream() {
  const prompt = `Stream ${model} from the Anthropic Node SDK. mock:text`;
  const events = [];
  const streamed = client.messages.stream({
    model,
    max_tokens: 256,
    messages: [{ role: 'user', content: prompt }],
  });
  let text = '';
  streamed.on('text', (delta) => { text += delta; });
  streamed.on('streamEvent', (event) => events.push(event.type));
  const final = await streamed.finalMessage();
  assert.equal(text, prompt);
  assert.equal(final.content[0].text, prompt);
  assert.equal(events[0], 'message_start');
  assert.equal(events[events.length - 1], 'message_stop');
  assert.ok(events.filter((e) => e === 'content_block_delta').length > 1, 'the answer arrived in pieces');
}

async function toolRoundTrip() {
  const tools = [{
    name: 'get_weather',
    description: 'Current weather in a city',
    input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  }];
  const question = { role: 'user', content: 'Weather in Paris? mock:call get_weather {"city": "Paris"}' };
  const first = await client.messages.create({ model, max_tokens: 256, tools, messages: [question] });
  assert.equal(first.stop_reason, 'tool_use');
  const call = first.content.find((b) => b.type === 'tool_use');
  assert.equal(call.name, 'get_weather');
  assert.deepEqual(call.input, { city: 'Paris' });
  const second = await client.messages.create({
    model,
    max_tokens: 256,
    tools,
    messages: [
      question,
      { role: 'assistant', content: first.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: 'sunny, 21 degrees' }] },
    ],
  });
  // Gemini wraps a text result as {"result": …}; the result itself must arrive.
  const ack = second.content[0].text;
  assert.ok(ack.startsWith('Tool result received: ') && ack.includes('sunny, 21 degrees'), ack);
}

(async () => {
  for (const check of [message, stream, toolRoundTrip]) {
    await check();
    console.log(`anthropic node sdk on ${model}: ${check.name} ok`);
  }
})().catch((err) => {
  console.error(`anthropic node sdk on ${model}: ${err.stack || err}`);
  process.exit(1);
});
