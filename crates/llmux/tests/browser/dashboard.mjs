// Drives the llmux dashboard in headless Chromium for crates/llmux/tests/dashboard.rs.
// Input from the environment (set by the Rust test); prints one JSON result line on success,
// exits non-zero with the reason on failure. Every wait is for a condition, with a deadline.
import { createRequire } from "node:module";
import path from "node:path";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const require = createRequire(import.meta.url);
const { chromium } = require(env("LLMUX_TEST_PLAYWRIGHT"));
const url = env("LLMUX_URL");
const artifacts = env("LLMUX_ARTIFACTS");
const expected = Number(env("LLMUX_REQUESTS"));
const failedId = env("LLMUX_FAILED_ID");
const keyId = env("LLMUX_KEY_ID");
const secrets = env("LLMUX_SECRETS").split(",");
const TIMEOUT = 15000;

function check(condition, message) {
  if (!condition) throw new Error(message);
}

const browser = await chromium.launch({
  executablePath: env("LLMUX_TEST_CHROMIUM"),
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const result = {};
let page;
try {
  page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.setDefaultTimeout(TIMEOUT);
  const consoleErrors = [];
  // The refused login is a 401 the browser reports on the console; anything else is a bug.
  page.on("console", (m) => m.type() === "error" && !m.text().includes("401") && consoleErrors.push(m.text()));
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  const shot = (name) => page.screenshot({ path: path.join(artifacts, name + ".png"), fullPage: true });

  // Log in: a wrong key is refused, the master key opens the dashboard.
  await page.goto(url + "/ui");
  await page.fill("#master-key", "not-the-master-key");
  await page.click("#login-button");
  await page.waitForFunction(() => document.getElementById("login-error").textContent.length > 0);
  check(await page.isHidden("#app"), "a wrong key must not open the dashboard");
  await page.fill("#master-key", env("LLMUX_MASTER"));
  await page.click("#login-button");
  await page.waitForSelector("#app", { state: "visible" });

  // Live traffic: the requests this test sent, by model and key, with charts drawn.
  await page.waitForFunction(
    (n) => document.querySelector('[data-card="requests"] b')?.textContent === String(n),
    expected,
  );
  const byModel = await page.textContent("#by-model");
  check(byModel.includes("fast") && byModel.includes("smart"), "traffic by model: " + byModel);
  const byKey = await page.textContent("#by-key");
  check(byKey.includes("team-ui"), "traffic by key: " + byKey);
  const points = await page.getAttribute("#chart-rps", "data-points");
  check(Number(points) >= 60, "requests/s chart has " + points + " points");
  check((await page.locator("#chart-latency path").count()) === 2, "latency chart has p50 and p95 lines");
  result.error_rate = await page.textContent('[data-card="errors"] b');
  check(result.error_rate !== "0.0 %", "one failed request shows in the error rate");
  await shot("traffic");

  // Vendor health.
  await page.click('nav button[data-tab="vendors"]');
  await page.waitForSelector("#vendor-credentials tr:nth-child(3)");
  const credentials = await page.textContent("#vendor-credentials");
  check(credentials.includes("first") && credentials.includes("second"), "credentials: " + credentials);
  check(credentials.includes("600"), "the quota of `first` shows");
  await shot("vendors");

  // Request log: every request, then filtered to the failure, whose attempts open as a timeline.
  await page.click('nav button[data-tab="requests"]');
  await page.waitForFunction((n) => document.querySelectorAll("#requests tr").length === n + 1, expected);
  const log = await page.textContent("#requests");
  check(!log.includes("<script>") || (await page.locator("#requests script").count()) === 0, "no markup from the log");
  await page.fill("#filter-model", "smart");
  await page.click("#filter-apply");
  await page.waitForFunction(() => document.querySelectorAll("#requests tr").length === 2);
  check((await page.textContent("#requests")).includes("smart"), "the model filter shows the request to smart");
  await page.fill("#filter-model", "");
  await page.fill("#filter-status", "5xx");
  await page.click("#filter-apply");
  await page.waitForFunction(() => document.querySelectorAll("#requests tr").length === 2);
  check((await page.textContent("#requests")).includes(failedId), "the 5xx filter shows the failed request");
  await shot("requests");
  await page.click("#requests tr.clickable");
  await page.waitForSelector("#request-detail", { state: "visible" });
  check((await page.textContent("#detail-id")) === failedId, "the failed request opens");
  const bars = await page.locator("#detail-timeline rect.attempt").count();
  check(bars >= 2, "the timeline shows every attempt, got " + bars);
  check((await page.locator("#detail-timeline rect.failed").count()) === bars, "failed attempts are marked");
  check((await page.textContent("#detail-fields")).includes(keyId), "the request names its key");
  result.attempts = bars;
  await shot("request");

  // Keys: create one with a budget, set its budget, revoke it.
  await page.click('nav button[data-tab="keys"]');
  await page.waitForFunction(() => document.getElementById("keys").textContent.includes("team-ui"));
  await page.fill("#key-name", "made-in-browser");
  await page.fill("#key-budget-daily", "1");
  await page.click("#key-create");
  await page.waitForSelector("#key-created", { state: "visible" });
  const plaintext = await page.textContent("#key-plaintext");
  check(plaintext.length > 20, "the new key is shown once");
  const row = page.locator("#keys tr", { hasText: "made-in-browser" });
  await row.waitFor();
  result.created_key_id = await row.locator("[data-key]").getAttribute("data-key");
  await row.locator("input.key-budget").fill("2.5");
  await row.locator("button.key-save").click();
  await page.waitForFunction(() =>
    [...document.querySelectorAll("#keys tr")].some((tr) => tr.textContent.includes("made-in-browser") && tr.textContent.includes("$2.50")),
  );
  await row.locator("button.key-revoke").click();
  await row.locator("button.key-revoke", { hasText: "Confirm revoke" }).click();
  await page.waitForFunction(() =>
    [...document.querySelectorAll("#keys tr")].some((tr) => tr.textContent.includes("made-in-browser") && tr.textContent.includes("revoked")),
  );
  await shot("keys");

  // Configuration, with every secret masked.
  await page.click('nav button[data-tab="config"]');
  await page.waitForFunction(() => document.getElementById("config-text").textContent.length > 0);
  const shown = await page.textContent("body");
  for (const secret of [...secrets, env("LLMUX_MASTER")]) check(!shown.includes(secret), "a secret is shown");
  check((await page.textContent("#config-credentials")).includes("***"), "credential values are masked");
  await shot("config");

  check(consoleErrors.length === 0, "console errors: " + consoleErrors.join("; "));
  console.log(JSON.stringify(result));
} catch (error) {
  if (page) await page.screenshot({ path: path.join(artifacts, "failure.png"), fullPage: true }).catch(() => {});
  console.error(error.stack || String(error));
  process.exitCode = 1;
} finally {
  await browser.close();
}
