import { test, expect, Browser, Page } from "@playwright/test";
import { readFileSync } from "fs";

const ADMIN_PASSWORD = process.env.TOLLGATE_ADMIN_PASSWORD ?? "";

// Collects console errors and page exceptions (a broken wasm-opt shows up here). The browser
// also logs the 400/401/403/409 answers these journeys provoke on purpose (bad input, refusals,
// a name already taken); those alone are expected.
const EXPECTED = /^Failed to load resource: the server responded with a status of 40[0139] /;
// A page whose hydration fails reloads itself once (frontend/src/lib.rs) and warns: for the
// journeys that is a failure like any other error (the panic, and its warning, are collected).
function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("console", (msg) => {
    const bad = msg.type() === "error" || (msg.type() === "warning" && msg.text().startsWith("tollgate:"));
    if (bad && !EXPECTED.test(msg.text())) errors.push(msg.text());
  });
  page.on("pageerror", (err) => errors.push(err.message));
  return errors;
}

// Every page the journeys visit is saved, at the width it was seen, under end2end/screenshots.
async function shot(page: Page, name: string) {
  const width = page.viewportSize()?.width ?? 1280;
  await page.screenshot({ path: `screenshots/${name}-${width}.png`, fullPage: true });
}

async function hydrated(page: Page) {
  // frontend/src/lib.rs marks the body once the wasm module has hydrated the page.
  await page.waitForSelector("body[data-hydrated]", { state: "attached" });
}

// A user made by the admin through the REST API, for a journey of its own.
async function createUser(browser: Browser, username: string, password: string) {
  const admin = await browser.newPage();
  await signIn(admin, "admin", ADMIN_PASSWORD);
  expect((await admin.request.post("/api/admin/users", {
    data: { username, password, role: "user" },
  })).status()).toBe(201);
  await admin.close();
}

async function signIn(page: Page, username: string, password: string) {
  await page.goto("/login");
  await hydrated(page);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("heading", { name: "Dashboard" })).toBeVisible();
}

test("admin signs in, uses the console and signs out", async ({ page }) => {
  const errors = watchErrors(page);
  await page.goto("/");
  await expect(page).toHaveURL(/\/login$/);
  await hydrated(page);

  // Client-side interaction: the password field reveals its text.
  const password = page.getByLabel("Password", { exact: true });
  await expect(password).toHaveAttribute("type", "password");
  await page.getByTestId("show-password").check();
  await expect(password).toHaveAttribute("type", "text");

  // A wrong password is refused with a message, and no session.
  await page.getByLabel("Username").fill("admin");
  await password.fill("not-the-password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("alert")).toContainText("invalid username or password");

  await password.fill(ADMIN_PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("heading", { name: "Dashboard" })).toBeVisible();
  await expect(page.getByTestId("username")).toHaveText("admin");
  await expect(page.getByTestId("role")).toHaveText("admin");
  await expect(page.getByTestId("balance")).toHaveText("$0.00");

  // Client-side interaction on the dashboard: balance in integer units.
  await page.getByTestId("balance-toggle").click();
  await expect(page.getByTestId("balance")).toHaveText("0 units");

  // Admin page: create a user, then filter the table as you type.
  await page.getByRole("navigation").getByRole("link", { name: "Admin" }).click();
  await expect(page.getByRole("heading", { name: "Overview", exact: true })).toBeVisible();
  await page.getByRole("navigation", { name: "Administration" }).getByRole("link", { name: "Users" }).click();
  await expect(page.getByRole("heading", { name: "Users", exact: true })).toBeVisible();
  await page.getByLabel("New username").fill("playwright-user");
  await page.getByLabel("New password").fill("playwright-pass");
  await page.getByRole("button", { name: "Create" }).click();
  await expect(page.getByTestId("user-row").filter({ hasText: "playwright-user" })).toBeVisible();
  await page.getByTestId("user-filter").fill("playwright");
  await expect(page.getByTestId("user-row")).toHaveCount(1);
  await page.getByTestId("user-filter").fill("");
  await expect(page.getByTestId("user-row")).toHaveCount(2);

  await page.getByTestId("sign-out").click();
  await expect(page).toHaveURL(/\/login$/);
  await page.goto("/");
  await expect(page).toHaveURL(/\/login$/);
  expect(errors).toEqual([]);
});

test("a plain user cannot reach the admin page", async ({ page }) => {
  const errors = watchErrors(page);
  await signIn(page, "playwright-user", "playwright-pass");
  await expect(page.getByTestId("role")).toHaveText("user");
  // No call yet: the dashboard tells how to make the first one.
  await expect(page.getByTestId("first-call")).toBeVisible();
  await expect(page.getByTestId("base-url")).toHaveText(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
  await shot(page, "dashboard-first-call");
  await expect(page.getByRole("navigation").getByRole("link", { name: "Admin" })).toHaveCount(0);

  await page.goto("/admin");
  await expect(page.getByTestId("forbidden")).toBeVisible();
  await expect(page.getByTestId("users-table")).toHaveCount(0);
  // Signing out is the app's (to /login); before hydration the form would post on its own.
  await hydrated(page);
  await page.getByTestId("sign-out").click();
  await expect(page).toHaveURL(/\/login$/);
  expect(errors).toEqual([]);
});

test("a user creates an API key, copies it once, uses it, disables and deletes it", async ({ page, context }) => {
  const errors = watchErrors(page);
  await context.grantPermissions(["clipboard-read", "clipboard-write"]);
  await signIn(page, "playwright-user", "playwright-pass");
  await page.getByRole("navigation").getByRole("link", { name: "API keys" }).click();
  await expect(page.getByRole("heading", { name: "API keys", exact: true })).toBeVisible();
  await hydrated(page);
  await expect(page.getByTestId("no-keys")).toBeVisible();

  // The server's objection is shown next to the field it names.
  await page.getByTestId("key-name").fill("ci key");
  await page.getByTestId("key-cap").fill("-1");
  await page.getByTestId("create-key").click();
  await expect(page.locator(".field-error:visible")).toHaveCount(1);
  await expect(page.locator(".field-error:visible")).toContainText("spend_cap");
  await page.getByTestId("key-cap").fill("5");
  await page.getByTestId("key-rpm").fill("2");
  await page.getByTestId("create-key").click();

  // The secret, once, with a working copy button.
  const secret = (await page.getByTestId("new-key-secret").textContent()) ?? "";
  expect(secret).toMatch(/^sk-[0-9A-Za-z]{48}$/);
  await page.getByTestId("copy-key").click();
  await expect(page.getByTestId("copy-key")).toHaveText("Copied");
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(secret);
  const row = page.getByTestId("key-row").filter({ hasText: "ci key" });
  await expect(row).toContainText("2 RPM");
  await expect(page.getByTestId("key-name")).toHaveValue("");
  await shot(page, "keys-created");
  await expect(row).toContainText("$0.00 / $5.00");
  await expect(row).toContainText(secret.slice(0, 9));

  // The key works, and its limit comes back in OpenAI's headers.
  const models = () => page.request.get("/v1/models", { headers: { authorization: `Bearer ${secret}` } });
  const res = await models();
  expect(res.status()).toBe(200);
  expect(res.headers()["x-ratelimit-limit-requests"]).toBe("2");

  // Dismissed, the secret is gone for good.
  await page.getByRole("button", { name: "I have saved it" }).click();
  await expect(page.getByTestId("new-key")).toHaveCount(0);
  await page.reload();
  await hydrated(page);
  await expect(page.getByText(secret)).toHaveCount(0);

  // Disabled: refused at once; enabled: accepted again.
  await row.getByRole("button", { name: "Disable" }).click();
  await expect(row.getByRole("button", { name: "Enable" })).toBeVisible();
  expect((await models()).status()).toBe(401);
  await row.getByRole("button", { name: "Enable" }).click();
  await expect(row.getByRole("button", { name: "Disable" })).toBeVisible();
  expect((await models()).status()).toBe(200);

  // Usable at phone width: nothing wider than the screen.
  await page.setViewportSize({ width: 375, height: 800 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(0);
  // On a phone each key is a card: its name and spend stay in sight.
  await expect(row.getByRole("cell", { name: "ci key" })).toBeVisible();
  await expect(row.getByRole("cell", { name: "$0.00 / $5.00" })).toBeVisible();
  await shot(page, "keys");
  await page.setViewportSize({ width: 1280, height: 800 });
  await shot(page, "keys");

  // Deleting asks first; "Cancel" folds the question away, the key stays.
  await row.getByTestId("delete-key").click();
  await row.getByRole("button", { name: "Cancel" }).click();
  await expect(row.getByTestId("confirm-delete")).toBeHidden();
  await expect(page.getByTestId("key-row")).toHaveCount(1);
  await row.getByTestId("delete-key").click();
  await row.getByTestId("confirm-delete").click();
  await expect(page.getByTestId("key-row")).toHaveCount(0);
  expect((await models()).status()).toBe(401);
  expect(errors).toEqual([]);
});

test("a user redeems a code, sees it in the balance history, and reads the prices", async ({ page, browser }) => {
  const errors = watchErrors(page);
  // The administrator makes a code and prices a model (through the admin API, signed in).
  const admin = await browser.newPage();
  await signIn(admin, "admin", ADMIN_PASSWORD);
  const batch = await (await admin.request.post("/api/admin/redeem-codes", { data: { count: 1, value: "3" } })).json();
  const code: string = batch.codes[0];
  expect(code).toMatch(/^RC-/);
  expect((await admin.request.post("/api/admin/channels", {
    data: { name: "e2e", base_url: "http://127.0.0.1:9/v1", models: ["e2e-model"] },
  })).status()).toBe(201);
  expect((await admin.request.put("/api/admin/prices/e2e-model", {
    data: {
      input_per_1m: "1.5", output_per_1m: "2", cache_write_1h_per_1m: "3",
      tiers: [{ above_tokens: 200000, input_per_1m: "3", output_per_1m: "4" }],
    },
  })).ok()).toBeTruthy();
  await admin.close();

  await signIn(page, "playwright-user", "playwright-pass");
  await page.getByRole("navigation").getByRole("link", { name: "Billing" }).click();
  await expect(page.getByRole("heading", { name: "Billing", exact: true })).toBeVisible();
  await hydrated(page);
  await expect(page.getByTestId("ledger-empty")).toBeVisible();
  await page.getByTestId("redeem-code").fill(code.toLowerCase());
  await page.getByTestId("redeem").click();
  await expect(page.getByTestId("redeemed")).toContainText("$3.00");
  await expect(page.getByTestId("new-balance")).toHaveText("$3.00");
  const row = page.getByTestId("ledger-row").first();
  await expect(row).toContainText("Credit");
  await expect(row).toContainText(code.slice(0, 7), { ignoreCase: true });
  await expect(row).toContainText("$3.00");
  // The same code again: refused, the balance unchanged.
  await page.getByTestId("redeem").click();
  await expect(page.getByTestId("redeem-error")).toBeVisible();
  await expect(page.getByTestId("ledger-row")).toHaveCount(1);
  await shot(page, "billing");
  await page.getByRole("navigation").getByRole("link", { name: "Dashboard" }).click();
  await expect(page.getByTestId("balance")).toHaveText("$3.00");

  // Prices at the user's group multiplier, searchable.
  await page.getByRole("navigation").getByRole("link", { name: "Pricing" }).click();
  await expect(page.getByRole("heading", { name: "Pricing", exact: true })).toBeVisible();
  await hydrated(page);
  const price = page.getByTestId("price-row").filter({ hasText: "e2e-model" });
  await expect(price).toContainText("$1.50");
  await expect(price).toContainText("$2.00");
  // The kinds priced apart from input and output, and the long-context tier under the row.
  await expect(price.getByTestId("price-other")).toHaveText("Cache writes 1 h / 1M $3.00");
  await expect(page.getByTestId("price-tiers")).toContainText("Above tokens 200,000: Input / 1M $3.00");
  await page.getByTestId("price-filter").fill("no-such-model");
  await expect(page.getByTestId("price-row")).toHaveCount(0);
  await page.getByTestId("price-filter").fill("E2E");
  await expect(page.getByTestId("price-row")).toHaveCount(1);
  await page.getByTestId("sign-out").click();
  await expect(page).toHaveURL(/\/login$/);

  // Signed out, the prices are public.
  const res = await page.goto("/pricing");
  expect(res?.status()).toBe(200);
  await expect(page.getByTestId("price-row").filter({ hasText: "e2e-model" })).toBeVisible();
  await expect(page.getByTestId("sign-in-link")).toBeVisible();
  for (const width of [1280, 375]) {
    await page.setViewportSize({ width, height: 800 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await shot(page, "pricing-public");
  }
  expect(errors).toEqual([]);
});

test("a call made with a new key shows in the logs with its cost, and in the balance", async ({ page, browser }) => {
  // Waits for the credit report that writes the charge (up to 15 s) on top of its own steps.
  test.setTimeout(60_000);
  const errors = watchErrors(page);
  // A channel to the mock upstream, priced: 3 prompt and 6 completion tokens cost $0.015.
  const admin = await browser.newPage();
  await signIn(admin, "admin", ADMIN_PASSWORD);
  expect((await admin.request.post("/api/admin/channels", {
    data: { name: "mock", base_url: process.env.TOLLGATE_E2E_MOCK_URL, models: ["gpt-e2e"] },
  })).status()).toBe(201);
  expect((await admin.request.put("/api/admin/prices/gpt-e2e", {
    data: { input_per_1m: "1000", output_per_1m: "2000" },
  })).ok()).toBeTruthy();
  await admin.close();

  await signIn(page, "playwright-user", "playwright-pass");
  await page.goto("/keys");
  await hydrated(page);
  await page.getByTestId("key-name").fill("logs key");
  await page.getByTestId("create-key").click();
  const secret = (await page.getByTestId("new-key-secret").textContent()) ?? "";
  // A key for some models only: ticked in the form, it lists only them; the form is emptied.
  await page.getByTestId("key-name").fill("one-model key");
  await page.getByLabel("gpt-e2e", { exact: true }).check();
  await page.getByTestId("create-key").click();
  await expect(page.getByTestId("new-key")).toContainText("one-model key");
  const oneModel = (await page.getByTestId("new-key-secret").textContent()) ?? "";
  await expect(page.getByTestId("key-row").filter({ hasText: "one-model key" })).toContainText("gpt-e2e");
  await expect(page.getByLabel("gpt-e2e", { exact: true })).not.toBeChecked();
  const listed = await page.request.get("/v1/models", { headers: { authorization: `Bearer ${oneModel}` } });
  expect((await listed.json()).data.map((m: { id: string }) => m.id)).toEqual(["gpt-e2e"]);
  const call = (model: string) => page.request.post("/v1/chat/completions", {
    headers: { authorization: `Bearer ${secret}` },
    data: { model, messages: [{ role: "user", content: "hello there world" }], max_tokens: 16 },
  });
  expect((await call("gpt-e2e")).status()).toBe(200);
  // A model whose only channel does not answer: a failed call, logged and free.
  expect((await call("e2e-model")).status()).toBe(503);

  await page.getByRole("navigation").getByRole("link", { name: "Call logs" }).click();
  await expect(page.getByRole("heading", { name: "Call logs", exact: true })).toBeVisible();
  // The navigation shows where the user is.
  await expect(page.getByRole("navigation").getByRole("link", { name: "Call logs" })).toHaveAttribute("aria-current", "page");
  await expect(page.getByRole("navigation").getByRole("link", { name: "Dashboard" })).not.toHaveAttribute("aria-current", "page");
  const rows = page.getByTestId("call-row");
  // Usage rows are written in batches, within moments of the calls.
  await expect.poll(async () => {
    await page.reload();
    await hydrated(page);
    return rows.count();
  }, { timeout: 15_000 }).toBe(2);
  const good = rows.filter({ hasText: "gpt-e2e" });
  await expect(good).toContainText("$0.015");
  await expect(good).toContainText("3 / 6 / 0");
  await expect(good).toContainText("200");
  await expect(rows.filter({ hasText: "e2e-model" })).toContainText("503");
  // The details of one call.
  await good.click();
  await expect(good).toHaveAttribute("aria-expanded", "true");
  const details = page.locator('[data-testid="call-details"]:visible');
  await expect(details).toHaveCount(1);
  await expect(details).toContainText("upstream");
  // By keyboard too: Enter folds it away.
  await good.press("Enter");
  await expect(details).toHaveCount(0);
  await expect(good).toHaveAttribute("aria-expanded", "false");
  await good.click();
  await shot(page, "logs");

  // Filters live in the URL: shareable, and the back button returns to the full list.
  await page.getByTestId("filter-status").selectOption("error");
  await page.getByTestId("apply-filters").click();
  await expect(page).toHaveURL(/status=error/);
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toContainText("503");
  await page.reload();
  await hydrated(page);
  await expect(rows).toHaveCount(1);
  await expect(page.getByTestId("filter-status")).toHaveValue("error");
  // The export holds the filtered range: the header and the one failed call.
  const download = page.waitForEvent("download");
  await page.getByTestId("export-csv").click();
  const file = await download;
  expect(file.suggestedFilename()).toMatch(/^tollgate-calls-\d{4}-\d{2}-\d{2}\.csv$/);
  const csv = readFileSync(await file.path(), "utf8").trim().split("\r\n");
  expect(csv).toHaveLength(2);
  expect(csv[0]).toMatch(/^id,time_utc,/);
  expect(csv[1]).toContain(",e2e-model,");
  expect(csv[1]).toContain(",503,");
  await page.getByTestId("filter-model").fill("gpt-e2e");
  await page.getByTestId("apply-filters").click();
  await expect(page.getByTestId("no-calls")).toBeVisible();
  await page.goBack();
  await expect(rows).toHaveCount(1);
  await page.goto("/logs?status=success");
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toContainText("gpt-e2e");
  await page.setViewportSize({ width: 375, height: 800 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(0);
  await shot(page, "logs");
  await page.setViewportSize({ width: 1280, height: 800 });

  // The charge reaches the balance history (reported within a second or two) and the balance.
  await expect.poll(async () => {
    await page.goto("/billing");
    return page.getByTestId("ledger-row").filter({ hasText: "Usage" }).count();
  }, { timeout: 15_000 }).toBeGreaterThan(0);
  await page.goto("/");
  await expect(page.getByTestId("balance")).toHaveText("$2.985");
  // The dashboard: today's spend, the chart (7 or 30 days), the breakdowns, the failure.
  await hydrated(page);
  await expect(page.getByTestId("spent-today")).toHaveText("$0.015");
  await expect(page.getByTestId("spent-30")).toHaveText("$0.015");
  // Both ranges come drawn by the server; the switch shows one.
  const chart = page.locator('[data-testid="usage-chart"]:visible');
  await expect(chart).toHaveCount(1);
  await expect(chart.getByTestId("bar")).toHaveCount(1);
  await expect(chart.locator("text.axis")).toHaveCount(9); // 6 day labels (of 30) + 3 grid lines
  await expect(chart.getByTestId("bar").locator("title")).toHaveText(/gpt-e2e: \$0\.015 · 1 requests/);
  await expect(page.getByTestId("by-model")).toContainText("gpt-e2e");
  await expect(page.getByTestId("by-key")).toContainText("logs key");
  await expect(page.getByTestId("recent-errors")).toContainText("503");
  await page.getByTestId("range-7").click();
  await expect(page.getByTestId("range-7")).toHaveAttribute("aria-pressed", "true");
  await expect(chart).toHaveCount(1);
  await expect(chart.getByTestId("bar")).toHaveCount(1);
  await expect(chart.locator("text.axis")).toHaveCount(10); // 7 day labels + 3 grid lines
  await page.getByTestId("range-30").click();
  await expect(chart.locator("text.axis")).toHaveCount(9);
  await chartLabelsFit(page);
  await shot(page, "dashboard");
  await page.setViewportSize({ width: 375, height: 800 });
  const narrow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(narrow).toBeLessThanOrEqual(0);
  // On a phone the breakdowns still name their rows, and the exact figures their days.
  await expect(page.getByTestId("by-model").getByRole("cell", { name: "gpt-e2e" })).toBeVisible();
  await expect(page.getByTestId("by-key").getByRole("cell", { name: /^logs key/ })).toBeVisible();
  await chart.locator("xpath=..").locator("details summary").click();
  await expect(chart.locator("xpath=..").locator("table.compact td").first()).toBeVisible();
  // Opening the figures scrolled the page: back to the top, or the sticky header is drawn mid-shot.
  await page.evaluate(() => window.scrollTo(0, 0));
  await shot(page, "dashboard");
  await page.setViewportSize({ width: 1280, height: 800 });

  // The status page: the priced model answered, the one without a working channel did not.
  await page.getByRole("navigation").getByRole("link", { name: "Status" }).click();
  await expect(page.getByRole("heading", { name: "Status", exact: true })).toBeVisible();
  const modelRow = (name: string) => page.getByTestId("model-row").filter({ hasText: name });
  await expect.poll(async () => {
    await page.reload();
    return modelRow("e2e-model").getByTestId("model-state").textContent();
  }, { timeout: 15_000 }).toBe("Down");
  // One model of two down: the service is impaired, not down, and says which check failed.
  await expect(page.getByTestId("service-status")).toContainText("Running with some parts impaired");
  await expect(page.getByTestId("failed-checks")).toContainText("down: e2e-model");
  await expect(modelRow("gpt-e2e").getByTestId("model-state")).toHaveText("Operational");
  await expect(modelRow("gpt-e2e").getByTestId("hour-rate")).toHaveText("100.0% (1)");
  await expect(modelRow("e2e-model").getByTestId("hour-rate")).toHaveText("0.0% (1)");
  for (const width of [1280, 375]) {
    await page.setViewportSize({ width, height: 800 });
    const over = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(over).toBeLessThanOrEqual(0);
    await shot(page, "status");
  }
  await page.setViewportSize({ width: 1280, height: 800 });
  expect(errors).toEqual([]);
});

test("the admin runs the gateway from the console, and every action is audited", async ({ page, browser }) => {
  // Waits for a charge to be reported (up to 15 s) on top of its own steps.
  test.setTimeout(90_000);
  const errors = watchErrors(page);
  await signIn(page, "admin", ADMIN_PASSWORD);
  await page.getByRole("navigation").getByRole("link", { name: "Admin" }).click();
  await expect(page.getByRole("heading", { name: "Overview", exact: true })).toBeVisible();
  await hydrated(page);
  const sub = page.getByRole("navigation", { name: "Administration" });
  await expect(sub.getByRole("link", { name: "Overview" })).toHaveAttribute("aria-current", "page");
  // The calls of the earlier journeys are on the chart and in today's figures.
  await expect(page.getByTestId("minute-chart").getByTestId("minute-bar").first()).toBeAttached();
  await expect(page.getByTestId("top-users")).toContainText("playwright-user");
  await expect(page.getByTestId("recent-actions")).toContainText("user.create");
  await shot(page, "admin-overview");
  await sub.getByRole("link", { name: "Users" }).click();
  await expect(page.getByRole("heading", { name: "Users", exact: true })).toBeVisible();
  await expect(sub.getByRole("link", { name: "Users" })).toHaveAttribute("aria-current", "page");

  // A user, created here, and given money with a reason.
  await page.getByLabel("New username").fill("console-user");
  await page.getByLabel("New password").fill("console-pass");
  await page.getByRole("button", { name: "Create", exact: true }).click();
  await expect(page.getByTestId("user-row").filter({ hasText: "console-user" })).toBeVisible();
  const pick = page.getByTestId("adjust-user");
  await pick.selectOption((await pick.locator("option", { hasText: "console-user" }).getAttribute("value")) ?? "");
  await page.getByTestId("adjust-amount").fill("abc");
  await page.getByTestId("adjust-reason").fill("Welcome credit e2e");
  await page.getByTestId("adjust").click();
  // Bad input: the server's error next to the field it names.
  await expect(page.locator(".field-error")).toBeVisible();
  await page.getByTestId("adjust-amount").fill("5");
  await page.getByTestId("adjust").click();
  await expect(page.getByTestId("adjusted")).toContainText("$5.00");
  await expect(page.getByTestId("user-row").filter({ hasText: "console-user" })).toContainText("$5.00");
  await shot(page, "admin-users");

  // A batch of redeem codes: shown once, downloaded as CSV.
  await sub.getByRole("link", { name: "Redeem codes" }).click();
  await expect(page.getByRole("heading", { name: "Redeem codes", exact: true })).toBeVisible();
  await hydrated(page);
  await page.getByTestId("batch-count").fill("3");
  await page.getByTestId("batch-value").fill("2.50");
  await page.getByTestId("batch-label").fill("e2e batch");
  await page.getByTestId("generate").click();
  await expect(page.getByTestId("new-codes")).toBeVisible();
  const codes = (await page.getByTestId("new-codes-list").inputValue()).split("\n");
  expect(codes).toHaveLength(3);
  const download = page.waitForEvent("download");
  await page.getByTestId("codes-csv").click();
  const file = await download;
  expect(file.suggestedFilename()).toMatch(/^redeem-batch-\d+\.csv$/);
  const csv = readFileSync(await file.path(), "utf8").trim().split("\n");
  expect(csv[0]).toBe("code,value_usd,batch");
  expect(csv.slice(1).map((l) => l.split(",")[0])).toEqual(codes);
  expect(csv[1]).toContain(",2.50,");
  const batchRow = page.getByTestId("batch-row").filter({ hasText: "e2e batch" });
  await expect(batchRow.getByTestId("batch-unused")).toHaveText("3");
  await shot(page, "admin-redeem");

  // A new price for the mock's model: the next call is charged at it.
  await sub.getByRole("link", { name: "Prices and groups" }).click();
  await expect(page.getByRole("heading", { name: "Prices and groups", exact: true })).toBeVisible();
  await hydrated(page);
  await page.getByTestId("admin-price-row").filter({ hasText: "gpt-e2e" }).getByRole("button", { name: "Edit" }).click();
  await expect(page.getByTestId("price-model")).toHaveValue("gpt-e2e");
  await page.getByTestId("price-input").fill("2000");
  await page.getByTestId("price-output").fill("4000");
  // A reasoning rate, the model's most output and a long-context tier (the one empty row).
  await page.getByTestId("price-reasoning").fill("5000");
  await page.getByTestId("price-max-output").fill("500");
  await expect(page.getByTestId("tier-row")).toHaveCount(1);
  await page.getByTestId("tier-above").fill("100000");
  await page.getByTestId("tier-input").fill("3000");
  await page.getByTestId("tier-output").fill("6000");
  await page.getByTestId("save-price").click();
  await expect(page.getByTestId("price-saved")).toContainText("gpt-e2e");
  const priced = page.getByTestId("admin-price-row").filter({ hasText: "gpt-e2e" });
  await expect(priced).toContainText("$4,000.00");
  await expect(priced.getByTestId("price-other")).toContainText("Reasoning / 1M $5,000.00");
  await expect(priced.getByTestId("price-other")).toContainText("Most output tokens 500");
  await expect(priced.getByTestId("price-other")).toContainText("Above tokens 100,000: Input / 1M $3,000.00");
  // Edited again, the form holds the tier, and one empty row to add another.
  await priced.getByRole("button", { name: "Edit" }).click();
  await expect(page.getByTestId("tier-row")).toHaveCount(2);
  await expect(page.getByTestId("tier-above").first()).toHaveValue("100000");
  await expect(page.getByTestId("price-reasoning")).toHaveValue("5000.00");
  // A tier without its threshold is refused, named beside the tiers.
  await page.getByTestId("tier-above").first().fill("");
  await page.getByTestId("save-price").click();
  await expect(page.locator("fieldset.tiers .field-error")).toBeVisible();
  await expect(page.getByTestId("tier-error")).toContainText("tiers[0].above_tokens");
  await page.getByTestId("tier-above").first().fill("100000");
  // Its history: the new version first and charged now, the one before it kept, not charged.
  await page.getByTestId("admin-price-row").filter({ hasText: "gpt-e2e" }).getByTestId("price-history").click();
  const versions = page.getByTestId("price-history-panel").getByTestId("price-version");
  await expect(versions.first()).toContainText("$4,000.00");
  await expect(versions.first()).toContainText("charged now");
  expect(await versions.count()).toBeGreaterThanOrEqual(2);
  await expect(versions.nth(1)).not.toContainText("charged now");
  await shot(page, "admin-prices");

  // The user sees the adjustment's reason, redeems a code, and calls the gateway.
  const user = await browser.newPage();
  const userErrors = watchErrors(user);
  await signIn(user, "console-user", "console-pass");
  await user.goto("/billing");
  await hydrated(user);
  await expect(user.getByTestId("ledger-row").filter({ hasText: "Welcome credit e2e" })).toContainText("$5.00");
  await user.getByTestId("redeem-code").fill(codes[0]);
  await user.getByTestId("redeem").click();
  await expect(user.getByTestId("new-balance")).toHaveText("$7.50");
  await user.goto("/keys");
  await hydrated(user);
  await user.getByTestId("key-name").fill("console key");
  await user.getByTestId("create-key").click();
  const secret = (await user.getByTestId("new-key-secret").textContent()) ?? "";
  const call = () => user.request.post("/v1/chat/completions", {
    headers: { authorization: `Bearer ${secret}` },
    data: { model: "gpt-e2e", messages: [{ role: "user", content: "hello there world" }], max_tokens: 16 },
  });
  expect((await call()).status()).toBe(200);
  // 3 prompt tokens at $2,000 and 6 completion tokens at $4,000 per 1M: $0.03.
  await expect.poll(async () => {
    await user.goto("/logs");
    // allTextContents does not wait for a row that is not there yet (the next poll reloads).
    return (await user.getByTestId("call-row").filter({ hasText: "gpt-e2e" }).allTextContents()).join(" ");
  }, { timeout: 15_000 }).toContain("$0.03");

  // Channels: one to the mock, one that fails; each tested live from the console.
  const mock = process.env.TOLLGATE_E2E_MOCK_URL ?? "";
  const mockRoot = mock.replace(/\/v1$/, "");
  await sub.getByRole("link", { name: "Channels" }).click();
  await expect(page.getByRole("heading", { name: "Channels", exact: true })).toBeVisible();
  await hydrated(page);
  const addChannel = async (name: string, url: string, models: string) => {
    await page.getByTestId("channel-name").fill(name);
    await page.getByTestId("channel-url").fill(url);
    await page.getByTestId("channel-key").fill("sk-upstream-secret-e2e");
    await page.getByTestId("channel-models").fill(models);
    await page.getByTestId("save-channel").click();
    await expect(page.getByTestId("channel-row").filter({ hasText: name })).toBeVisible();
  };
  // Bad input first: the error is next to the field.
  await page.getByTestId("channel-name").fill("bad");
  await page.getByTestId("channel-url").fill("ftp://nowhere");
  await page.getByTestId("save-channel").click();
  await expect(page.locator(".field-error")).toContainText("base_url");
  // Every timeout is in the form: a zero is refused by the browser before it is sent (and by
  // the server, as the API tests show), set ones are saved.
  await page.getByTestId("channel-url").fill(mock);
  const answerTimeout = page.getByTestId("channel-answer-timeout");
  await answerTimeout.fill("0");
  await page.getByTestId("save-channel").click();
  expect(await answerTimeout.evaluate((e) => (e as HTMLInputElement).validity.rangeUnderflow)).toBe(true);
  await answerTimeout.fill("900000");
  await page.getByTestId("channel-connect-timeout").fill("3000");
  await page.getByTestId("channel-idle-timeout").fill("30000");
  await addChannel("console-good", mock, "mock-a");
  const saved = (await (await page.request.get("/api/admin/channels")).json()) as Array<Record<string, unknown>>;
  const good = saved.find((c) => c.name === "console-good");
  expect([good?.answer_timeout_ms, good?.connect_timeout_ms, good?.idle_timeout_ms]).toEqual([900000, 3000, 30000]);
  await addChannel("console-broken", `${mockRoot}/m/status=503/v1`, "mock-b");
  await expect(page.locator("body")).not.toContainText("sk-upstream-secret-e2e");
  await page.getByTestId("channel-row").filter({ hasText: "console-good" }).getByTestId("test-channel").click();
  await expect(page.getByTestId("test-outcome")).toHaveText("Answered");
  await expect(page.getByTestId("channel-test")).toContainText("HTTP 200");
  await page.getByTestId("channel-row").filter({ hasText: "console-broken" }).getByTestId("test-channel").click();
  await expect(page.getByTestId("test-outcome")).toHaveText("Failed");
  await expect(page.getByTestId("channel-test")).toContainText("HTTP 503");
  await expect(page.getByTestId("test-error")).not.toBeEmpty();
  await expect(page.getByTestId("channel-row").filter({ hasText: "console-good" }).getByTestId("channel-health")).toContainText("100.0% (1)");
  // An Anthropic channel: its kind chosen in the form, its test a Messages call to the mock.
  // It serves two user groups only: a bad name is refused beside the field, then shown in the row.
  await page.getByTestId("channel-kind").selectOption("anthropic");
  await page.getByTestId("channel-groups").fill("vip, not a group!");
  await page.getByTestId("channel-name").fill("console-claude");
  await page.getByTestId("channel-url").fill(mock);
  await page.getByTestId("save-channel").click();
  await expect(page.locator(".field-error")).toContainText("groups");
  await page.getByTestId("channel-groups").fill("vip, team");
  await addChannel("console-claude", mock, "claude-e2e");
  const claudeRow = page.getByTestId("channel-row").filter({ hasText: "console-claude" });
  await expect(claudeRow.getByTestId("channel-groups-cell")).toHaveText("only for team, vip");
  await expect(claudeRow.getByTestId("channel-kind-cell")).toHaveText("Anthropic");
  await expect(page.getByTestId("channel-row").filter({ hasText: "console-good" }).getByTestId("channel-kind-cell")).toHaveText("OpenAI-compatible");
  await claudeRow.getByTestId("test-channel").click();
  await expect(page.getByTestId("channel-test")).toContainText("claude-e2e");
  await expect(page.getByTestId("test-outcome")).toHaveText("Answered");
  await expect(page.getByTestId("channel-test")).toContainText("HTTP 200");
  await shot(page, "admin-channels");

  // A public model mapped to both, the broken one first; priced; a call falls back and succeeds.
  await sub.getByRole("link", { name: "Model mappings" }).click();
  await expect(page.getByRole("heading", { name: "Model mappings", exact: true })).toBeVisible();
  await hydrated(page);
  await page.getByTestId("mapping-model").fill("console-model");
  await page.getByTestId("mapping-targets").fill("mock-b, mock-a, nowhere-model");
  await page.getByTestId("save-mapping").click();
  const card = page.locator('[data-testid="mapping"][data-model="console-model"]');
  await expect(card.getByTestId("target")).toHaveCount(3);
  await expect(card.getByTestId("mapping-unpriced")).toBeVisible();
  await expect(card.getByTestId("mapping-unserved")).toContainText("nowhere-model");
  // Removing a target (keyboard: the buttons are in the tab order).
  await card.getByRole("button", { name: "Remove nowhere-model" }).press("Enter");
  await expect(card.getByTestId("target")).toHaveCount(2);
  await expect(card.getByTestId("mapping-unserved")).toHaveCount(0);
  expect((await page.request.put("/api/admin/prices/console-model", {
    data: { input_per_1m: "1", output_per_1m: "1" },
  })).ok()).toBeTruthy();
  await page.reload();
  await hydrated(page);
  await expect(card.getByTestId("mapping-unpriced")).toHaveCount(0);
  await shot(page, "admin-mappings");
  const served = async () => {
    const log = await (await page.request.get(`${mockRoot}/_mock/requests`)).json();
    return log.map((r: { model: string }) => r.model).filter((m: string) => m === "mock-a" || m === "mock-b");
  };
  const callModel = () => user.request.post("/v1/chat/completions", {
    headers: { authorization: `Bearer ${secret}` },
    data: { model: "console-model", messages: [{ role: "user", content: "hi" }], max_tokens: 4 },
  });
  const before = (await served()).length;
  expect((await callModel()).status()).toBe(200);
  expect((await served()).slice(before)).toEqual(["mock-b", "mock-a"]);
  // Reordered: mock-a first, and the next call goes to it alone.
  await card.getByRole("button", { name: "Move up mock-a" }).click();
  await expect(card.getByTestId("target").first()).toContainText("mock-a");
  const after = (await served()).length;
  expect((await callModel()).status()).toBe(200);
  expect((await served()).slice(after)).toEqual(["mock-a"]);

  // Every user's calls, filtered by user in the URL, with the export of that range.
  await sub.getByRole("link", { name: "Calls" }).click();
  await expect(page.getByRole("heading", { name: "All calls" })).toBeVisible();
  await hydrated(page);
  await page.getByTestId("filter-user").selectOption({ label: "console-user" });
  await page.getByTestId("apply-filters").click();
  await expect(page).toHaveURL(/\/admin\/calls\?user_id=\d+/);
  await expect.poll(async () => {
    await page.reload();
    return page.getByTestId("call-row").filter({ hasText: "console-model" }).count();
  }, { timeout: 15_000 }).toBe(2);
  await expect(page.getByTestId("call-row").filter({ hasText: "gpt-e2e" })).toHaveCount(1);
  await expect(page.getByTestId("export-csv")).toHaveAttribute("href", /^\/api\/admin\/logs\.csv\?user_id=\d+/);
  await shot(page, "admin-calls");

  // The admin finds the key by its owner and disables it: the next call is refused.
  await sub.getByRole("link", { name: "Keys" }).click();
  await expect(page.getByRole("heading", { name: "All API keys" })).toBeVisible();
  await hydrated(page);
  const owner = page.getByTestId("keys-owner");
  await owner.selectOption({ label: "console-user" });
  await expect(page.getByTestId("admin-key-row")).toHaveCount(1);
  // Its limits edited here are enforced at once: one request a minute.
  await page.getByTestId("admin-key-row").getByTestId("edit-limits").click();
  await page.getByTestId("limit-rpm").fill("1");
  await page.getByTestId("save-limits").click();
  await expect(page.getByTestId("admin-key-row").getByTestId("key-limits")).toHaveText("1 RPM");
  await call();
  expect((await call()).status()).toBe(429);
  await page.getByTestId("admin-key-row").getByTestId("admin-key-toggle").click();
  await expect(page.getByTestId("admin-key-row").filter({ hasText: "console key" })).toContainText("disabled");
  expect((await call()).status()).toBe(401);
  await shot(page, "admin-keys");

  // The batch counts the used code.
  await sub.getByRole("link", { name: "Redeem codes" }).click();
  await expect(page.getByTestId("batch-row").filter({ hasText: "e2e batch" }).getByTestId("batch-used")).toHaveText("1");
  await page.getByTestId("batch-row").filter({ hasText: "e2e batch" }).getByTestId("batch-codes").click();
  await expect(page.getByTestId("code-row").filter({ hasText: "console-user" })).toHaveCount(1);

  // One user's page: their balance, spend, keys and ledger (with the adjustment's reason), and
  // their calls a click away.
  await sub.getByRole("link", { name: "Users" }).click();
  await page.getByTestId("user-row").filter({ hasText: "console-user" }).getByTestId("user-link").click();
  await expect(page.getByTestId("user-name")).toHaveText("console-user");
  await hydrated(page);
  // $5.00 + $2.50 less one or two calls of about $0.03 (the second may have passed the 1 RPM
  // limit), to the unit.
  await expect(page.getByTestId("user-balance")).toHaveText(/^\$7\.4\d+$/);
  await expect(page.getByTestId("user-spent-30")).toHaveText(/^\$0\.0[1-9]\d*$/);
  await expect(page.getByTestId("user-key-row").filter({ hasText: "console key" })).toContainText("disabled");
  await expect(page.getByTestId("ledger-row").filter({ hasText: "Welcome credit e2e" })).toContainText("$5.00");
  await expect(page.getByTestId("ledger-row").filter({ hasText: "Redeem code" })).toContainText("$2.50");
  for (const width of [1280, 375]) {
    await page.setViewportSize({ width, height: 800 });
    const over = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(over).toBeLessThanOrEqual(0);
    await shot(page, "admin-user");
  }
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.getByTestId("user-calls").click();
  await expect(page).toHaveURL(/\/admin\/calls\?user_id=\d+/);
  await expect(page.getByTestId("call-row").filter({ hasText: "gpt-e2e" }).first()).toBeVisible();

  // The audit log shows each action, by the administrator, newest first.
  await sub.getByRole("link", { name: "Audit log" }).click();
  await expect(page.getByRole("heading", { name: "Audit log", exact: true })).toBeVisible();
  await hydrated(page);
  const audit = page.getByTestId("audit-row");
  for (const action of ["key.status", "key.update", "mapping.set", "channel.create", "price.set", "redeem_batch.create", "balance.adjust", "user.create"]) {
    await expect(audit.filter({ hasText: action }).first()).toBeVisible();
  }
  await expect(audit.first()).toContainText("key.status");
  await expect(audit.filter({ hasText: "balance.adjust" }).first()).toContainText("Welcome credit e2e");
  await page.getByTestId("audit-kind").selectOption("price");
  await expect(audit.filter({ hasText: "user.create" })).toHaveCount(0);
  await expect(audit.first()).toContainText("price.set");
  for (const width of [1280, 375]) {
    await page.setViewportSize({ width, height: 800 });
    await shot(page, "admin-audit");
  }
  await page.setViewportSize({ width: 1280, height: 800 });

  // Scheduled jobs: run the cleanup by hand and see it end well; it is audited.
  await sub.getByRole("link", { name: "Jobs" }).click();
  const cleanup = page.locator('[data-testid="job-row"][data-job="cleanup"]');
  await expect(cleanup).toContainText("0 */15 * * * *");
  await cleanup.getByTestId("job-run").click();
  await expect.poll(async () => {
    await page.getByTestId("jobs-refresh").click();
    return (await cleanup.getByTestId("job-outcome").allTextContents()).join("");
  }, { timeout: 15000 }).toBe("OK");
  await expect(cleanup.getByTestId("job-detail")).toContainText("sessions");
  await expect(page.locator('[data-testid="job-row"][data-job="backup"]')).toBeVisible();
  for (const width of [1280, 375]) {
    await page.setViewportSize({ width, height: 800 });
    // On a phone each job is a card: its name and run button in view, nothing scrolled aside.
    for (const part of [cleanup.locator("code").first(), cleanup.getByTestId("job-run")]) {
      const box = await part.boundingBox();
      expect(box).not.toBeNull();
      expect(box!.x).toBeGreaterThanOrEqual(0);
      expect(box!.x + box!.width).toBeLessThanOrEqual(width);
    }
    const wide = await page.getByTestId("jobs").evaluate((t) => t.scrollWidth - t.clientWidth);
    expect(wide).toBeLessThanOrEqual(0);
    await shot(page, "admin-jobs");
  }
  await page.setViewportSize({ width: 1280, height: 800 });

  // The overview counts today's spend and shows the channels.
  await sub.getByRole("link", { name: "Overview" }).click();
  await expect(page.getByTestId("top-users")).toContainText("console-user");
  await expect(page.getByTestId("channel-glance")).toContainText("console-good");
  await expect(page.getByTestId("recent-actions")).toContainText("key.status");
  for (const width of [1280, 375]) {
    await page.setViewportSize({ width, height: 800 });
    const over = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(over).toBeLessThanOrEqual(0);
    await shot(page, "admin-overview");
  }
  // On a phone no admin page is wider than the screen: each table stacks or scrolls in its card.
  await page.setViewportSize({ width: 375, height: 800 });
  for (const path of ["/admin", "/admin/users", "/admin/users/1", "/admin/keys", "/admin/redeem", "/admin/channels", "/admin/mappings", "/admin/prices", "/admin/calls", "/admin/audit", "/admin/jobs"]) {
    await page.goto(path);
    await hydrated(page);
    const over = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(over, path).toBeLessThanOrEqual(0);
  }
  await page.setViewportSize({ width: 1280, height: 800 });

  // A plain user: every admin page is refused, and so is every admin server function.
  for (const path of ["/admin", "/admin/users", "/admin/users/1", "/admin/keys", "/admin/redeem", "/admin/channels", "/admin/mappings", "/admin/prices", "/admin/calls", "/admin/audit", "/admin/jobs"]) {
    const res = await user.goto(path);
    expect(res?.status(), path).toBe(403);
    await expect(user.getByTestId("forbidden")).toBeVisible();
  }
  for (const fn of ["admin/users", "admin/keys", "admin/batches", "admin/prices", "admin/channels", "admin/mappings", "admin/overview", "admin/jobs"]) {
    expect((await user.request.post(`/_sfn/${fn}`)).status(), fn).toBe(403);
  }
  expect((await user.request.post("/_sfn/admin/user", { form: { id: "1" } })).status()).toBe(403);
  expect((await user.request.post("/_sfn/admin/adjust_balance", {
    form: { user_id: "1", amount: "100", reason: "self" },
  })).status()).toBe(403);
  await user.close();
  expect(userErrors).toEqual([]);
  expect(errors).toEqual([]);
});

/** Every label of the dashboard's chart lies inside the chart, at a desktop and a phone width. */
async function chartLabelsFit(page: Page) {
  for (const width of [1280, 375]) {
    await page.setViewportSize({ width, height: 800 });
    const outside = await page.locator('[data-testid="usage-chart"]:visible').evaluate((svg) => {
      const box = (svg as SVGSVGElement).viewBox.baseVal;
      return Array.from(svg.querySelectorAll("text"))
        .filter((t) => {
          const b = (t as SVGTextElement).getBBox();
          return b.x < 0 || b.x + b.width > box.width;
        })
        .map((t) => t.textContent);
    });
    expect(outside, `labels cut at ${width}px`).toEqual([]);
  }
  await page.setViewportSize({ width: 1280, height: 800 });
}

test("the console speaks 简体中文 when asked, and remembers it", async ({ page, browser }) => {
  const errors = watchErrors(page);
  await signIn(page, "playwright-user", "playwright-pass");
  await hydrated(page);
  await page.getByTestId("language").click();
  await expect(page.getByRole("heading", { name: "概览" })).toBeVisible();
  await expect(page.locator("html")).toHaveAttribute("lang", "zh-CN");
  await hydrated(page);
  await chartLabelsFit(page);
  await shot(page, "dashboard-zh");
  // Rendered in Chinese by the server after a reload, and by the browser when navigating.
  await page.reload();
  await hydrated(page);
  await expect(page.getByRole("heading", { name: "概览" })).toBeVisible();
  await page.getByRole("navigation").getByRole("link", { name: "API 密钥" }).click();
  await expect(page.getByRole("heading", { name: "API 密钥", exact: true })).toBeVisible();
  await expect(page.getByTestId("create-key")).toHaveText("创建密钥");
  await shot(page, "keys-zh");
  await page.getByRole("navigation").getByRole("link", { name: "账单" }).click();
  await expect(page.getByRole("heading", { name: "账单", exact: true })).toBeVisible();
  await shot(page, "billing-zh");
  await page.getByRole("navigation").getByRole("link", { name: "价格" }).click();
  await expect(page.getByRole("heading", { name: "价格", exact: true })).toBeVisible();
  await shot(page, "pricing-zh");
  // And back.
  await page.getByTestId("language").click();
  await expect(page.getByRole("heading", { name: "Pricing", exact: true })).toBeVisible();
  await expect(page.locator("html")).toHaveAttribute("lang", "en");

  // A browser that prefers Chinese gets it on its first visit.
  const zh = await browser.newContext({ locale: "zh-CN" });
  const first = await zh.newPage();
  await first.goto("/login");
  await expect(first.getByRole("heading", { name: "登录 Tollgate" })).toBeVisible();
  await first.setViewportSize({ width: 375, height: 800 });
  await shot(first, "login-zh");
  await zh.close();
  expect(errors).toEqual([]);
});

test("unknown pages answer 404", async ({ page }) => {
  const res = await page.goto("/no/such/page");
  expect(res?.status()).toBe(404);
  await expect(page.getByText("There is no page here.")).toBeVisible();
});

test("signing in from a guarded page comes back to it", async ({ page }) => {
  const errors = watchErrors(page);
  await page.goto("/admin");
  await expect(page).toHaveURL(/\/login\?next=\/admin$/);
  await hydrated(page);
  await page.getByLabel("Username").fill("admin");
  await page.getByLabel("Password", { exact: true }).fill(ADMIN_PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/admin$/);
  await expect(page.getByRole("heading", { name: "Overview", exact: true })).toBeVisible();
  await page.getByTestId("sign-out").click();
  await expect(page).toHaveURL(/\/login$/);
  expect(errors).toEqual([]);
});

test("the API reference renders every route, offline, at desktop and phone width", async ({ page, context }) => {
  const errors = watchErrors(page);
  // Nothing outside the gateway is fetched: the page works without a CDN.
  const outside: string[] = [];
  await context.route(/^https?:\/\/(?!127\.0\.0\.1|localhost)/, (route) => {
    outside.push(route.request().url());
    return route.abort();
  });
  for (const width of [1280, 375]) {
    await page.setViewportSize({ width, height: 800 });
    const res = await page.goto("/docs");
    expect(res?.status()).toBe(200);
    await hydrated(page);
    await expect(page.getByRole("heading", { name: "API reference" })).toBeVisible();
    // The reader's base URL: where this page was served from.
    await expect(page.getByTestId("docs-base-url")).toHaveText(new URL(page.url()).origin);
    const shown = page.locator('[data-testid="operation"]:visible');
    const all = await shown.count();
    expect(all).toBeGreaterThanOrEqual(44);
    await expect(page.locator(".docs-tag:visible")).not.toHaveCount(0);
    // Search narrows the list as you type (client-side, after hydration), in any case, and
    // hides the tags left empty.
    await page.getByTestId("docs-search").fill("Redeem-Codes");
    await expect(shown).toHaveCount(3);
    await expect(page.locator(".docs-tag:visible")).toHaveCount(1);
    const op = shown.first();
    await op.locator("summary").click();
    await expect(op.getByText("Responses")).toBeVisible();
    await page.getByTestId("docs-search").fill("no such operation");
    await expect(shown).toHaveCount(0);
    await page.getByTestId("docs-search").fill("");
    await expect(shown).toHaveCount(all);
    // Reached from another page, the browser draws the server's reference itself.
    await page.goto("/pricing");
    await hydrated(page);
    await page.locator('a[href="/docs"]:visible').first().click();
    await expect(page).toHaveURL(/\/docs$/);
    await expect(shown).toHaveCount(all);
    await page.getByTestId("docs-search").fill("redeem-codes");
    await expect(shown).toHaveCount(3);
    // Nothing is wider than the screen.
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
  }
  const doc = await (await page.request.get("/api/openapi.json")).json();
  expect(doc.openapi).toMatch(/^3\./);
  expect(Object.keys(doc.paths)).toContain("/api/admin/model-mappings/{model}");
  expect(outside).toEqual([]);
  expect(errors).toEqual([]);
});

test("a user changes their password and signs out everywhere", async ({ page, browser }) => {
  const errors = watchErrors(page);
  await createUser(browser, "pw-user", "pw-user-pass");

  await signIn(page, "pw-user", "pw-user-pass");
  await page.getByTestId("whoami").click();
  await expect(page.getByRole("heading", { name: "Account", exact: true })).toBeVisible();
  await hydrated(page);
  await page.getByTestId("current-password").fill("not-the-password");
  await page.getByTestId("new-password").fill("pw-user-new-pass");
  await page.getByTestId("change-password").click();
  await expect(page.locator(".field-error")).toContainText("current_password");
  await page.getByTestId("current-password").fill("pw-user-pass");
  await page.getByTestId("new-password").fill("pw-user-new-pass");
  await page.getByTestId("change-password").click();
  await expect(page.getByTestId("password-changed")).toBeVisible();
  await shot(page, "account");
  await page.getByTestId("sign-out-everywhere").click();
  await expect(page).toHaveURL(/\/login$/);
  await signIn(page, "pw-user", "pw-user-new-pass");
  expect(errors).toEqual([]);
});

test("a user sets their alerts, and the admin the system's, at desktop and phone width", async ({ page, browser }) => {
  const errors = watchErrors(page);
  await createUser(browser, "alert-user", "alert-user-pass");
  await signIn(page, "alert-user", "alert-user-pass");
  await page.goto("/account");
  await hydrated(page);
  const panel = page.getByTestId("alerts-panel");
  // No alerts.smtp on this server: no address is taken.
  await expect(panel.getByTestId("alerts-email")).toBeDisabled();
  await expect(panel.getByTestId("alerts-none")).toBeVisible();
  await panel.getByTestId("alerts-balance").fill("5");
  await panel.getByTestId("alerts-key-cap").fill("80");
  await panel.getByTestId("alerts-webhook").fill("http://127.0.0.1:9/hook");
  await panel.getByTestId("alerts-secret").fill("e2e-secret-0123456789");
  await panel.getByTestId("alerts-save").click();
  // A private address is refused with the field and the server's reason; the form keeps what
  // was typed.
  await expect(panel.getByTestId("alerts-error")).toContainText("webhook_url");
  await expect(panel.getByTestId("alerts-error")).toContainText("private");
  await expect(panel.getByTestId("alerts-balance")).toHaveValue("5");
  await panel.getByTestId("alerts-webhook").fill("https://hooks.example.com/tollgate");
  await panel.getByTestId("alerts-save").click();
  await expect(panel.getByTestId("alerts-saved")).toBeVisible();
  await page.reload();
  await hydrated(page);
  await expect(panel.getByTestId("alerts-balance")).toHaveValue("5.00");
  await expect(panel.getByTestId("alerts-key-cap")).toHaveValue("80");
  await expect(panel.getByTestId("alerts-webhook")).toHaveValue("https://hooks.example.com/tollgate");
  // The secret is never shown; left empty, it is kept.
  await expect(panel.getByTestId("alerts-secret")).toHaveValue("");
  await expect(panel.getByTestId("alerts-secret")).toHaveAttribute("placeholder", /keep/);
  await panel.getByTestId("alerts-key-cap").fill("");
  await panel.getByTestId("alerts-save").click();
  await expect(panel.getByTestId("alerts-saved")).toBeVisible();
  await expect(panel.getByTestId("alerts-key-cap")).toHaveValue("");
  await shot(page, "account-alerts");
  await page.setViewportSize({ width: 390, height: 844 });
  await expect(panel.getByTestId("alerts-save")).toBeVisible();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(0);
  await shot(page, "account-alerts");

  const admin = await browser.newPage();
  const adminErrors = watchErrors(admin);
  await signIn(admin, "admin", ADMIN_PASSWORD);
  await admin.goto("/admin");
  await hydrated(admin);
  const sys = admin.getByTestId("system-alerts");
  await expect(sys.getByTestId("alerts-channels")).not.toBeChecked();
  await sys.getByTestId("alerts-channels").check();
  await sys.getByTestId("alerts-webhook").fill("https://hooks.example.com/ops");
  await sys.getByTestId("alerts-save").click();
  // A first webhook needs its secret.
  await expect(sys.getByTestId("alerts-error")).toContainText("webhook_secret");
  await sys.getByTestId("alerts-secret").fill("e2e-ops-secret-0123456789");
  await sys.getByTestId("alerts-save").click();
  await expect(sys.getByTestId("alerts-saved")).toBeVisible();
  await admin.reload();
  await hydrated(admin);
  await expect(sys.getByTestId("alerts-channels")).toBeChecked();
  await expect(sys.getByTestId("alerts-drift")).not.toBeChecked();
  await expect(sys.getByTestId("alerts-webhook")).toHaveValue("https://hooks.example.com/ops");
  await shot(admin, "admin-alerts");
  await admin.setViewportSize({ width: 390, height: 844 });
  await expect(sys.getByTestId("alerts-save")).toBeVisible();
  await shot(admin, "admin-alerts");
  // The user's settings are theirs: the system's did not change them, nor the reverse.
  const mine = await page.request.get("/api/me/alerts");
  expect((await mine.json()).settings.channels).toBe(false);
  await admin.close();
  expect(adminErrors).toEqual([]);
  expect(errors).toEqual([]);
});

test("an admin resets a password, deletes a user, and deletes a price and a group", async ({ page, browser }) => {
  const errors = watchErrors(page);
  await signIn(page, "admin", ADMIN_PASSWORD);
  const made = await page.request.post("/api/admin/users", { data: { username: "doomed-user", password: "doomed-pass" } });
  expect(made.status()).toBe(201);
  const id = (await made.json()).id as number;
  const key = await page.request.post("/api/admin/keys", { data: { user_id: id, name: "doomed key" } });
  const secret = (await key.json()).key as string;
  expect((await page.request.put("/api/admin/prices/doomed-model", { data: { input_per_1m: "1", output_per_1m: "1" } })).ok()).toBeTruthy();
  expect((await page.request.put("/api/admin/groups/bronze", { data: { multiplier: "0.5" } })).ok()).toBeTruthy();

  // The user is signed in somewhere; a reset with no password given makes one, shown once,
  // and that session ends.
  const user = await browser.newPage();
  await signIn(user, "doomed-user", "doomed-pass");
  await page.goto(`/admin/users/${id}`);
  await hydrated(page);
  // Too long for the server (the browser checks only the least length): its error by the field.
  await page.getByTestId("reset-input").fill("x".repeat(300));
  await page.getByTestId("reset-password").click();
  await expect(page.locator(".field-error")).toContainText("password");
  await page.getByTestId("reset-input").fill("");
  await page.getByTestId("reset-password").click();
  const fresh = (await page.getByTestId("generated-password").textContent()) ?? "";
  expect(fresh).toHaveLength(20);
  await shot(page, "admin-user-reset");
  expect((await user.request.get("/api/me/logs.csv")).status()).toBe(401);
  await signIn(user, "doomed-user", fresh);

  // Deleted after a confirmation: the key stops (known before, refused for want of money; then
  // unknown), the account shows as deleted.
  const call = () => user.request.post("/v1/chat/completions", {
    headers: { authorization: `Bearer ${secret}` },
    data: { model: "gpt-e2e", messages: [{ role: "user", content: "hi" }], max_tokens: 4 },
  });
  expect((await call()).status()).toBe(402);
  await page.getByTestId("delete-user").click();
  await page.getByTestId("account-actions").getByRole("button", { name: "Yes, delete" }).click();
  await expect(page.getByTestId("user-status")).toHaveText("deleted");
  await expect(page.getByTestId("account-actions")).toHaveCount(0);
  expect((await call()).status()).toBe(401);
  expect((await user.request.get("/api/me/logs.csv")).status()).toBe(401);
  await page.goto("/admin/users");
  await expect(page.getByTestId("user-row").filter({ hasText: "doomed-user" })).toContainText("deleted");
  // The keys page filters on the server: the deleted user's key is among the disabled ones.
  await page.goto("/admin/keys");
  await hydrated(page);
  await page.getByTestId("keys-status").selectOption("disabled");
  await expect(page.getByTestId("admin-key-row").filter({ hasText: "doomed key" })).toHaveCount(1);
  await expect(page.getByTestId("keys-status")).toHaveValue("disabled");

  // A price and a group multiplier, deleted after a confirmation.
  await page.goto("/admin/prices");
  await hydrated(page);
  const priceRow = page.getByTestId("admin-price-row").filter({ hasText: "doomed-model" });
  await priceRow.getByTestId("delete-price").click();
  await priceRow.getByRole("button", { name: "Yes, delete" }).click();
  await expect(page.getByTestId("admin-price-row").filter({ hasText: "doomed-model" })).toHaveCount(0);
  const groupRow = page.getByTestId("group-row").filter({ hasText: "bronze" });
  await groupRow.getByTestId("delete-group").click();
  await groupRow.getByRole("button", { name: "Yes, delete" }).click();
  await expect(page.getByTestId("group-row").filter({ hasText: "bronze" })).toHaveCount(0);
  const audit = await (await page.request.get("/api/admin/audit?limit=10")).json();
  const actions = (audit.data as Array<{ action: string }>).map((e) => e.action);
  for (const a of ["group.delete", "price.delete", "user.delete", "user.password_reset"]) expect(actions).toContain(a);
  await user.close();
  expect(errors).toEqual([]);
});

test("a visitor signs up when registration is open and lands on the first-call guide", async ({ page }) => {
  const errors = watchErrors(page);
  await page.goto("/login");
  await hydrated(page);
  await page.getByRole("button", { name: "Create an account" }).click();
  await expect(page.getByRole("heading", { name: "Create an account" })).toBeVisible();
  await page.getByLabel("Username").fill("newcomer");
  await page.getByLabel("Password", { exact: true }).fill("short");
  await page.getByRole("button", { name: "Create account" }).click();
  // Too short a password: refused, next to the form, and nobody is signed in.
  await expect(page.getByRole("alert")).toContainText("password");
  await page.getByLabel("Password", { exact: true }).fill("newcomer-password");
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page.getByRole("heading", { name: "Dashboard" })).toBeVisible();
  await expect(page.getByTestId("username")).toHaveText("newcomer");
  await expect(page.getByTestId("balance")).toHaveText("$0.00");
  await expect(page.getByTestId("first-call")).toBeVisible();
  await shot(page, "signup-dashboard");
  // The same name again is taken.
  await page.getByTestId("sign-out").click();
  await expect(page).toHaveURL(/\/login$/);
  await hydrated(page);
  await page.getByRole("button", { name: "Create an account" }).click();
  await page.getByLabel("Username").fill("newcomer");
  await page.getByLabel("Password", { exact: true }).fill("another-password");
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page.getByRole("alert")).toBeVisible();
  await expect(page.getByRole("heading", { name: "Create an account" })).toBeVisible();
  expect(errors).toEqual([]);
});

test("without JavaScript the forms still work: the server answers, the page shows it", async ({ browser }) => {
  await createUser(browser, "nojs-user", "nojs-user-pass");

  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto("/login");
  await page.getByLabel("Username").fill("nojs-user");
  await page.getByLabel("Password", { exact: true }).fill("not-the-password");
  await page.getByRole("button", { name: "Sign in" }).click();
  // The browser posted the form itself; the server sent it back with the error in the URL,
  // and the page, rendered on the server, shows that error where the form shows its errors.
  await expect(page).toHaveURL(/\/login\?.*__err=/);
  await expect(page.getByRole("alert")).toContainText("invalid username or password");
  await page.getByLabel("Username").fill("nojs-user");
  await page.getByLabel("Password", { exact: true }).fill("nojs-user-pass");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("heading", { name: "Dashboard" })).toBeVisible();
  await expect(page.getByTestId("whoami")).toHaveText("nojs-user");
  // The keys' table is drawn by the server, its actions plain forms: made, disabled, deleted.
  await page.goto("/keys");
  await page.getByTestId("key-name").fill("nojs key");
  await page.getByLabel("gpt-e2e", { exact: true }).check();
  await page.getByTestId("create-key").click();
  // The page the browser went back to shows the secret, once, and the key has the ticked model.
  await expect(page.getByTestId("new-key")).toContainText("nojs key");
  const nojsSecret = (await page.getByTestId("new-key-secret").textContent()) ?? "";
  expect(nojsSecret).toMatch(/^sk-/);
  const nojsModels = await page.request.get("/v1/models", { headers: { authorization: `Bearer ${nojsSecret}` } });
  expect((await nojsModels.json()).data.map((m: { id: string }) => m.id)).toEqual(["gpt-e2e"]);
  const row = page.getByTestId("key-row").filter({ hasText: "nojs key" });
  await expect(row).toContainText("active");
  await expect(row).toContainText("gpt-e2e");
  await row.getByRole("button", { name: "Disable" }).click();
  await expect(row.getByRole("button", { name: "Enable" })).toBeVisible();
  await expect(page.getByTestId("new-key")).toHaveCount(0);
  await expect(row).toContainText("disabled");
  await row.getByTestId("delete-key").click();
  await row.getByTestId("confirm-delete").click();
  await expect(page.getByTestId("no-keys")).toBeVisible();
  // The call log's filters are a plain GET form: the server reads them from the URL.
  await page.goto("/logs");
  await page.getByTestId("filter-status").selectOption("error");
  await page.getByTestId("filter-model").fill("nojs-model");
  await page.getByTestId("apply-filters").click();
  await expect(page).toHaveURL(/status=error/);
  await expect(page).toHaveURL(/model=nojs-model/);
  await expect(page.getByTestId("filter-status")).toHaveValue("error");
  await expect(page.getByTestId("filter-model")).toHaveValue("nojs-model");
  await expect(page.getByTestId("no-calls")).toBeVisible();
  await page.goto("/");
  await page.getByTestId("sign-out").click();
  await expect(page).toHaveURL(/\/login$/);
  await expect(page.getByTestId("sign-in-link")).toBeVisible();
  await context.close();
});
