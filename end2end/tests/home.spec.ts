import { test, expect, type Page } from '@playwright/test';

// Every browser error fails the test that caused it.
function watchConsole(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(msg.text());
  });
  page.on('pageerror', (err) => errors.push(err.message));
  return errors;
}

async function hydrated(page: Page) {
  await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);
}

function unique(label: string, projectName: string): string {
  return `${label} ${projectName} ${Date.now()} ${Math.floor(Math.random() * 1e6)}`;
}

test.describe('with JavaScript', () => {
  let errors: string[];
  test.beforeEach(async ({ page }) => {
    errors = watchConsole(page);
  });
  test.afterEach(() => {
    expect(errors, 'console errors').toEqual([]);
  });

  test('hydrates, and a valid prompt appears without navigation and survives a reload', async ({ page }, info) => {
    await page.goto('/');
    await hydrated(page);
    // A marker on window disappears if the page navigates or reloads.
    await page.evaluate(() => ((window as any).__stillHere = true));

    const prompt = unique('Autumn sale banner with maple leaves', info.project.name);
    await page.getByLabel('Prompt', { exact: true }).fill(prompt);
    await page.getByLabel('Style', { exact: true }).selectOption('retro');
    await page.getByRole('button', { name: 'Create' }).click();

    const item = page.getByTestId('recent-prompts').locator('li', { hasText: prompt });
    await expect(item).toBeVisible();
    await expect(item).toContainText('Retro');
    expect(await page.evaluate(() => (window as any).__stillHere)).toBe(true);
    await expect(page.getByLabel('Prompt', { exact: true })).toHaveValue('');

    await page.reload();
    await expect(page.getByTestId('recent-prompts').locator('li', { hasText: prompt })).toBeVisible();
  });

  test('an invalid prompt shows its message beside the field and is not stored', async ({ page }, info) => {
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

    // Fixing it clears the message and stores the prompt.
    const prompt = unique('Fixed prompt', info.project.name);
    await page.getByLabel('Prompt', { exact: true }).fill(prompt);
    await page.getByRole('button', { name: 'Create' }).click();
    await expect(page.getByTestId('recent-prompts').locator('li', { hasText: prompt })).toBeVisible();
    await expect(page.locator('#prompt-error')).toHaveText('');
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

  test('the page is rendered on the server', async ({ page }) => {
    await page.goto('/');
    await expect(page.getByRole('heading', { name: 'Create' })).toBeVisible();
    await expect(page.getByLabel('Prompt', { exact: true })).toBeVisible();
    await expect(page.getByLabel('Style', { exact: true }).locator('option')).toHaveCount(8);
    await expect(page.getByRole('heading', { name: 'Recent prompts' })).toBeVisible();
  });

  test('the form still validates and stores after a plain post', async ({ page }, info) => {
    await page.goto('/');
    await page.getByLabel('Prompt', { exact: true }).fill('no');
    await page.getByRole('button', { name: 'Create' }).click();
    await expect(page.locator('#prompt-error')).toHaveText(/at least 3 characters/);

    const prompt = unique('Plain HTML post', info.project.name);
    await page.getByLabel('Prompt', { exact: true }).fill(prompt);
    await page.getByRole('button', { name: 'Create' }).click();
    await expect(page.getByTestId('recent-prompts').locator('li', { hasText: prompt })).toBeVisible();
    await expect(page.locator('#prompt-error')).toHaveText('');
  });
});

test('health and readiness answer 200', async ({ request }) => {
  const health = await request.get('/api/health');
  expect(health.status()).toBe(200);
  expect(await health.json()).toEqual({ ok: true });
  const ready = await request.get('/api/ready');
  expect(ready.status()).toBe(200);
  expect((await ready.json()).ok).toBe(true);
});
