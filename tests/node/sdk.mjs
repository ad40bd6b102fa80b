// The official openai npm package against `strictly serve` (run by tests/openai.rs, which starts
// the server on loopback and passes its address): one `chat.completions.parse` round trip with
// `zodResponseFormat`. Prints the parsed object as JSON (the Rust test validates it with the
// jsonschema crate); exits non-zero on a failed check.
import OpenAI from "openai";
import { zodResponseFormat } from "openai/helpers/zod";
import { z } from "zod";

const Route = z.object({
  team: z.enum(["billing", "returns", "technical"]),
  priority: z.number().int(),
  reason: z.string(),
});

const client = new OpenAI({
  baseURL: `${process.env.STRICTLY_BASE_URL}/v1`,
  apiKey: process.env.STRICTLY_API_KEY,
  maxRetries: 0,
  timeout: 120_000,
});

const completion = await client.chat.completions.parse({
  model: process.env.STRICTLY_MODEL_ID,
  messages: [
    { role: "system", content: "Route the customer's message to a team." },
    { role: "user", content: "I was charged twice for order 1234" },
  ],
  response_format: zodResponseFormat(Route, "route"),
  max_tokens: 60,
  seed: 1,
});
const message = completion.choices[0].message;
if (message.parsed === null || message.refusal !== null) {
  throw new Error(`no parsed object: ${JSON.stringify(message)}`);
}
// zod has already checked it (parse throws otherwise); print it for the independent validator.
Route.parse(message.parsed);
console.log(JSON.stringify({ parsed: message.parsed, schema: zodResponseFormat(Route, "route").json_schema.schema }));
