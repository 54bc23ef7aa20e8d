import { test, expect, Page } from "@playwright/test";

const ADMIN_PASSWORD = process.env.TOLLGATE_ADMIN_PASSWORD ?? "";

// Collects console errors and page exceptions (a broken wasm-opt shows up here). The browser
// also logs the 401/403 answers these journeys provoke on purpose; those alone are expected.
const EXPECTED = /^Failed to load resource: the server responded with a status of 40[13] /;
function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("console", (msg) => {
    if (msg.type() === "error" && !EXPECTED.test(msg.text())) errors.push(msg.text());
  });
  page.on("pageerror", (err) => errors.push(err.message));
  return errors;
}

async function hydrated(page: Page) {
  // frontend/src/lib.rs marks the body once the wasm module has hydrated the page.
  await page.waitForSelector("body[data-hydrated]", { state: "attached" });
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
  await page.getByRole("link", { name: "Users" }).click();
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
  await expect(page.getByRole("link", { name: "Users" })).toHaveCount(0);

  await page.goto("/admin");
  await expect(page.getByTestId("forbidden")).toBeVisible();
  await expect(page.getByTestId("users-table")).toHaveCount(0);
  await page.getByTestId("sign-out").click();
  await expect(page).toHaveURL(/\/login$/);
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
  await expect(page.getByRole("heading", { name: "Users", exact: true })).toBeVisible();
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
    const all = await page.getByTestId("operation").count();
    expect(all).toBeGreaterThanOrEqual(44);
    // Search narrows the list as you type (client-side, after hydration).
    await page.getByTestId("docs-search").fill("redeem-codes");
    await expect(page.getByTestId("operation")).toHaveCount(3);
    const op = page.getByTestId("operation").first();
    await op.locator("summary").click();
    await expect(op.getByText("Responses")).toBeVisible();
    await page.getByTestId("docs-search").fill("");
    await expect(page.getByTestId("operation")).toHaveCount(all);
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
