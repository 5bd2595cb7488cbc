import { test, expect, type Page } from '@playwright/test';
import { hydrated, signUp, watchConsole } from './helpers';

// `./dev test` seeds the e2e database with images (`socialcraft seed --images 120`) before
// the server starts, so Explore has several pages from the first spec on.

async function cardIds(page: Page): Promise<string[]> {
  return page.getByTestId('gallery').locator('li.gallery-card').evaluateAll((cards) =>
    cards.map((c) => c.getAttribute('data-image-id') ?? ''),
  );
}

test.describe('gallery', () => {
  let errors: string[];
  test.beforeEach(async ({ page }) => {
    errors = watchConsole(page);
  });
  test.afterEach(() => {
    expect(errors).toEqual([]);
  });

  test('Explore loads page after page as it scrolls, each image once', async ({ page }) => {
    // The server renders the first page whole.
    const html = await (await page.request.get('/explore')).text();
    expect(html.match(/class="gallery-card"/g)).toHaveLength(24);

    await page.goto('/explore');
    await hydrated(page);
    const cards = page.getByTestId('gallery').locator('li.gallery-card');
    // Each image reserves its box and offers the variants.
    const first = cards.first().locator('img');
    await expect(first).toHaveAttribute('srcset', /320w, .* 720w, .* \d+w$/);
    await expect(first).toHaveAttribute('sizes', /vw/);
    await expect(first).toHaveAttribute('width', /^\d+$/);
    await expect(first).toHaveAttribute('height', /^\d+$/);
    await expect(cards.nth(20).locator('img')).toHaveAttribute('loading', 'lazy');

    // The observer loads ahead of the reader (a screen early), so count pages as they come.
    let count = await cards.count();
    expect(count).toBeGreaterThanOrEqual(24);
    for (let i = 0; i < 2; i++) {
      await page.getByTestId('next-page').scrollIntoViewIfNeeded();
      await expect.poll(() => cards.count()).toBeGreaterThan(count);
      count = await cards.count();
    }
    expect(count).toBeGreaterThanOrEqual(72);
    const ids = await cardIds(page);
    expect(new Set(ids).size).toBe(ids.length);
    // No navigation happened: the pages came through the observer.
    await expect(page).toHaveURL(/\/explore$/);
  });

  test('rating an image survives a reload, and can be cleared', async ({ page }, info) => {
    await signUp(page, `rate-${info.project.name}`);
    await page.goto('/explore');
    await hydrated(page);
    await page.getByTestId('gallery').locator('li.gallery-card a').nth(3).click();
    await expect(page.getByTestId('image-page')).toBeVisible();
    await hydrated(page);
    await expect(page.getByTestId('my-rating')).toHaveText('You have not rated it.');
    await page.getByRole('button', { name: '4 stars' }).click();
    await expect(page.getByTestId('my-rating')).toHaveText('Your rating: 4 of 5');
    await expect(page.getByTestId('rating-summary')).toContainText('of 5 from');

    await page.reload();
    await hydrated(page);
    await expect(page.getByTestId('my-rating')).toHaveText('Your rating: 4 of 5');
    await expect(page.getByRole('button', { name: '4 stars' })).toHaveAttribute('aria-pressed', 'true');

    await page.getByRole('button', { name: 'Clear my rating' }).click();
    await expect(page.getByTestId('my-rating')).toHaveText('You have not rated it.');
    await page.reload();
    await hydrated(page);
    await expect(page.getByTestId('my-rating')).toHaveText('You have not rated it.');
  });

  test('a new image: in My images, shared to Explore, downloaded, deleted', async ({ page }, info) => {
    test.setTimeout(60_000);
    await signUp(page, `mine-${info.project.name}`);
    await page.goto('/gallery');
    await hydrated(page);
    await expect(page.getByTestId('gallery-empty')).toBeVisible();

    await page.goto('/');
    await hydrated(page);
    const prompt = `Gallery check ${info.project.name} ${Date.now()}`;
    await page.getByLabel('Prompt', { exact: true }).fill(prompt);
    await page.getByLabel('Images', { exact: true }).selectOption('1');
    await page.getByRole('button', { name: 'Create' }).click();
    const card = page.getByTestId('generation').filter({ hasText: prompt });
    await expect(card).toHaveAttribute('data-status', 'succeeded', { timeout: 30_000 });

    await page.getByRole('link', { name: 'My images' }).click();
    await expect(page).toHaveURL(/\/gallery$/);
    const mine = page.getByTestId('gallery').locator('li.gallery-card');
    await expect(mine).toHaveCount(1);
    await expect(page.getByTestId('gallery-end')).toBeVisible();
    await mine.first().locator('a').click();
    await expect(page.getByRole('heading', { level: 1 })).toHaveText(prompt);
    await hydrated(page);
    await expect(page.getByTestId('sharing-state')).toContainText('Private');

    // Every download link serves its file.
    for (const name of ['PNG original', 'WebP, full size', 'WebP, 720 px', 'WebP, 320 px']) {
      const href = await page.getByRole('link', { name }).getAttribute('href');
      const res = await page.request.get(href!);
      expect(res.status(), name).toBe(200);
      expect(res.headers()['content-type'], name).toMatch(name.startsWith('PNG') ? /image\/png/ : /image\/webp/);
    }

    await page.getByRole('button', { name: 'Share on Explore' }).click();
    await expect(page.getByTestId('sharing-state')).toContainText('Shared on Explore');
    const url = page.url();
    await page.goto('/explore');
    await hydrated(page);
    await expect(page.getByTestId('gallery').locator('li.gallery-card img').first()).toHaveAttribute('alt', prompt);

    await page.goto(url);
    await hydrated(page);
    await page.getByText('Delete…').click();
    await page.getByRole('button', { name: 'Delete this image' }).click();
    await expect(page).toHaveURL(/\/gallery\?deleted=1$/);
    await expect(page.getByText('Image deleted.')).toBeVisible();
    await expect(page.getByTestId('gallery-empty')).toBeVisible();
    // Gone for everyone, files included.
    const gone = await page.request.get(url);
    expect(gone.status()).toBe(404);
  });

  test('choosing a trend fills the prompt', async ({ page }, info) => {
    await signUp(page, `trend-${info.project.name}`);
    const chips = page.getByTestId('trends').locator('a.trend-chip');
    await expect(chips.first()).toBeVisible();
    const topic = await chips.first().locator('.trend-topic').textContent();
    const tag = await chips.first().locator('.trend-tag').textContent();
    await chips.first().click();
    await expect(page.getByLabel('Prompt', { exact: true })).toHaveValue(`${topic} ${tag}`);
    await expect(page).toHaveURL(/\/$/);
  });
});

test.describe('gallery without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('"Next page" links walk Explore', async ({ page }) => {
    await page.goto('/explore');
    const first = await cardIds(page);
    expect(first).toHaveLength(24);
    await page.getByTestId('next-page').click();
    await expect(page).toHaveURL(/\/explore\?after=/);
    const second = await cardIds(page);
    expect(second).toHaveLength(24);
    expect(second.filter((id) => first.includes(id))).toEqual([]);
  });

  test('a trend link fills the prompt', async ({ page }, info) => {
    await signUp(page, `trend-nojs-${info.project.name}`, false);
    const chip = page.getByTestId('trends').locator('a.trend-chip').first();
    const topic = await chip.locator('.trend-topic').textContent();
    const tag = await chip.locator('.trend-tag').textContent();
    await chip.click();
    await expect(page.getByLabel('Prompt', { exact: true })).toHaveValue(`${topic} ${tag}`);
  });
});
