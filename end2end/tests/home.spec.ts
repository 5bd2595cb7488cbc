import { test, expect } from '@playwright/test';
import { allow, hydrated, signUp, watchConsole } from './helpers';

// Creating needs an account: every spec that creates signs up a fresh one first, through the
// real sign-up form.

function unique(label: string, projectName: string): string {
  return `${label} ${projectName} ${Date.now()} ${Math.floor(Math.random() * 1e6)}`;
}

test.describe('with JavaScript', () => {
  let errors: string[];
  test.beforeEach(async ({ page }, info) => {
    errors = watchConsole(page);
    await signUp(page, `create-${info.project.name}`);
  });
  test.afterEach(() => {
    expect(errors, 'console errors').toEqual([]);
  });

  test('a submission shows live progress, then four finished images, without navigating', async ({ page }, info) => {
    const streams: string[] = [];
    page.on('request', (r) => {
      if (r.url().includes('/events')) streams.push(r.url());
    });
    await page.goto('/');
    await hydrated(page);
    // A marker on window disappears if the page navigates or reloads.
    await page.evaluate(() => ((window as any).__stillHere = true));

    const prompt = unique('Autumn sale banner with maple leaves', info.project.name);
    await page.getByLabel('Prompt', { exact: true }).fill(prompt);
    await page.getByLabel('Style', { exact: true }).selectOption('retro');
    await page.getByLabel('Format', { exact: true }).selectOption('instagram_portrait');
    await expect(page.getByLabel('Images', { exact: true })).toHaveValue('4');
    await page.getByRole('button', { name: 'Create' }).click();

    const card = page.getByTestId('generation').filter({ hasText: prompt });
    await expect(card).toHaveCount(1);
    // Record every status the card passes through, from the moment it appears.
    await card.evaluate((el) => {
      const seen: string[] = [el.getAttribute('data-status') ?? ''];
      (window as any).__statuses = seen;
      new MutationObserver(() => seen.push(el.getAttribute('data-status') ?? '')).observe(el, {
        attributes: true,
        attributeFilter: ['data-status'],
      });
    });
    await expect(card).toContainText('Retro');
    await expect(page.getByLabel('Prompt', { exact: true })).toHaveValue('');

    await expect(card).toHaveAttribute('data-status', 'succeeded', { timeout: 30_000 });
    await expect(card.locator('.status-text')).toHaveText('Done · 4 images');
    const images = card.locator('img');
    await expect(images).toHaveCount(4);
    for (const img of await images.all()) {
      await img.scrollIntoViewIfNeeded();
      await expect
        .poll(() => img.evaluate((i: HTMLImageElement) => i.complete && i.naturalWidth > 0))
        .toBe(true);
      await expect(img).toHaveAttribute('srcset', /320w.*720w.*1080w/);
    }
    const statuses: string[] = await page.evaluate(() => (window as any).__statuses);
    expect(statuses[0], `statuses seen: ${statuses}`).toMatch(/queued|running/);
    expect(streams.length, 'progress came over the event stream').toBeGreaterThan(0);
    expect(await page.evaluate(() => (window as any).__stillHere)).toBe(true);

    // The finished generation is there after a reload, rendered by the server.
    await page.reload();
    await expect(page.getByTestId('generation').filter({ hasText: prompt }).locator('img')).toHaveCount(4);
  });

  test('when the event stream is blocked, progress still arrives by polling', async ({ page }, info) => {
    // A proxy that breaks Server-Sent Events: every stream request fails.
    await page.route('**/api/generations/*/events', (route) => route.abort());
    await page.goto('/');
    await hydrated(page);
    const prompt = unique('Polling fallback check', info.project.name);
    await page.getByLabel('Prompt', { exact: true }).fill(prompt);
    await page.getByLabel('Images', { exact: true }).selectOption('2');
    await page.getByRole('button', { name: 'Create' }).click();
    const card = page.getByTestId('generation').filter({ hasText: prompt });
    await expect(card).toHaveAttribute('data-status', 'succeeded', { timeout: 30_000 });
    await expect(card.locator('img')).toHaveCount(2);
    // The only console errors are the blocked streams themselves.
    allow(errors, /ERR_FAILED/);
  });

  test('a rate-limited submission says how long to wait', async ({ page }, info) => {
    // The server's 429, as the rate limiter sends it.
    await page.route('**/api/generations/submit', (route) =>
      route.fulfill({
        status: 429,
        headers: { 'retry-after': '42', 'content-type': 'application/json' },
        body: JSON.stringify({
          code: 'rate_limited',
          message: 'Too many requests. Please wait 42 s and try again.',
          fields: [],
        }),
      }),
    );
    await page.goto('/');
    await hydrated(page);
    await page.getByLabel('Prompt', { exact: true }).fill(unique('Limited', info.project.name));
    await page.getByRole('button', { name: 'Create' }).click();
    await expect(page.locator('.form-error')).toHaveText('Too many requests. Please wait 42 s and try again.');
    allow(errors, /status of 429 /);
  });

  test('an invalid prompt shows its message beside the field and is not sent', async ({ page }, info) => {
    const requests: string[] = [];
    page.on('request', (r) => {
      if (r.method() === 'POST') requests.push(r.url());
    });
    await page.goto('/');
    await hydrated(page);
    await page.getByLabel('Prompt', { exact: true }).fill('ab');
    await page.getByRole('button', { name: 'Create' }).click();

    await expect(page.locator('#prompt-error')).toHaveText(/at least 3 characters/);
    await expect(page.getByLabel('Prompt', { exact: true })).toHaveAttribute('aria-invalid', 'true');
    // The shared rules caught it in the browser: nothing was sent, nothing stored.
    expect(requests).toEqual([]);

    // Fixing it clears the message and queues the generation.
    const prompt = unique('Fixed prompt', info.project.name);
    await page.getByLabel('Prompt', { exact: true }).fill(prompt);
    await page.getByLabel('Images', { exact: true }).selectOption('1');
    await page.getByRole('button', { name: 'Create' }).click();
    await expect(page.getByTestId('generation').filter({ hasText: prompt })).toBeVisible();
    await expect(page.locator('#prompt-error')).toHaveText('');
  });

  test('a blocked prompt names the rule and creates nothing', async ({ page }, info) => {
    await page.goto('/');
    await hydrated(page);
    const prompt = unique('Get free followers now', info.project.name);
    await page.getByLabel('Prompt', { exact: true }).fill(prompt);
    await page.getByRole('button', { name: 'Create' }).click();
    await expect(page.locator('#prompt-error')).toContainText('moderation rule');
    await expect(page.locator('#prompt-error')).toContainText('spam');
    await expect(page.getByTestId('generation').filter({ hasText: prompt })).toHaveCount(0);
    await page.reload();
    await hydrated(page);
    await expect(page.getByTestId('generation').filter({ hasText: prompt })).toHaveCount(0);
  });

  test('the layout fits the screen', async ({ page }) => {
    await page.goto('/');
    await hydrated(page);
    const overflow = await page.evaluate(
      () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
    );
    expect(overflow).toBeLessThanOrEqual(0);
    await expect(page.getByRole('button', { name: 'Create' })).toBeInViewport();
  });
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('the page is rendered on the server, for visitors and creators', async ({ page }, info) => {
    await page.goto('/');
    await expect(page.getByTestId('signed-out')).toBeVisible();
    await expect(page.getByLabel('Prompt', { exact: true })).toHaveCount(0);
    await signUp(page, `nojs-${info.project.name}`, false);
    await expect(page.getByRole('heading', { name: 'Create' })).toBeVisible();
    await expect(page.getByLabel('Prompt', { exact: true })).toBeVisible();
    await expect(page.getByLabel('Style', { exact: true }).locator('option')).toHaveCount(8);
    await expect(page.getByLabel('Format', { exact: true }).locator('option')).toHaveCount(6);
    await expect(page.getByRole('heading', { name: 'Your generations' })).toBeVisible();
  });

  test('the form still validates and stores after a plain post', async ({ page }, info) => {
    await signUp(page, `nojs-post-${info.project.name}`, false);
    await page.goto('/');
    await page.getByLabel('Prompt', { exact: true }).fill('no');
    await page.getByRole('button', { name: 'Create' }).click();
    await expect(page.locator('#prompt-error')).toHaveText(/at least 3 characters/);

    const prompt = unique('Plain HTML post', info.project.name);
    await page.getByLabel('Prompt', { exact: true }).fill(prompt);
    await page.getByLabel('Images', { exact: true }).selectOption('1');
    await page.getByRole('button', { name: 'Create' }).click();
    await expect(page.getByTestId('generation').filter({ hasText: prompt })).toBeVisible();
    await expect(page.locator('#prompt-error')).toHaveText('');
  });
});

test('a visitor is invited to sign up instead of seeing the form', async ({ page }) => {
  const errors = watchConsole(page);
  await page.goto('/');
  await hydrated(page);
  await expect(page.getByTestId('signed-out')).toContainText('Create a free account');
  await expect(page.getByLabel('Prompt', { exact: true })).toHaveCount(0);
  await page.getByTestId('signed-out').getByRole('link', { name: 'Sign up' }).click();
  await expect(page).toHaveURL(/\/signup$/);
  await expect(page.getByRole('heading', { name: 'Create your account' })).toBeVisible();
  expect(errors, 'console errors').toEqual([]);
});

test('health and readiness answer 200', async ({ request }) => {
  const health = await request.get('/api/health');
  expect(health.status()).toBe(200);
  expect(await health.json()).toEqual({ ok: true });
  const ready = await request.get('/api/ready');
  expect(ready.status()).toBe(200);
  expect((await ready.json()).ok).toBe(true);
});
