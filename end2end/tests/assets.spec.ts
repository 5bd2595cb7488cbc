import { test, expect } from '@playwright/test';
import { deflateSync } from 'node:zlib';
import { allow, hydrated, signUp, watchConsole } from './helpers';

function crc32(bytes: Buffer): number {
  let crc = 0xffffffff;
  for (const b of bytes) {
    crc ^= b;
    for (let i = 0; i < 8; i++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function chunk(kind: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(kind, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** A real `w` x `h` RGB PNG of noise (so it stays big: progress has something to show). */
function noisePng(w: number, h: number): Buffer {
  const raw = Buffer.alloc((w * 3 + 1) * h);
  let seed = 7;
  for (let i = 0; i < raw.length; i++) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    raw[i] = i % (w * 3 + 1) === 0 ? 0 : seed >> 16;
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw, { level: 1 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

test.describe('assets and brand kits', () => {
  let errors: string[];
  test.beforeEach(async ({ page }) => {
    errors = watchConsole(page);
  });
  test.afterEach(() => {
    expect(errors).toEqual([]);
  });

  test('an upload shows its progress, then its previews', async ({ page }, info) => {
    test.setTimeout(60_000);
    await signUp(page, `assets-${info.project.name}`);
    await page.goto('/assets');
    await hydrated(page);
    const file = noisePng(1200, 800);
    await page.getByTestId('file-input').setInputFiles({ name: 'noise.png', mimeType: 'image/png', buffer: file });
    const row = page.getByTestId('upload').filter({ hasText: 'noise.png' });
    await expect(row.locator('progress')).toHaveAttribute('value', '100', { timeout: 20_000 });
    // The other viewport's spec may have stored the same bytes first: then it says so.
    await expect(row.getByTestId('upload-status')).toHaveText(/^Ready/, { timeout: 30_000 });
    await expect(row.locator('img.upload-thumb')).toHaveJSProperty('naturalWidth', 320);
    // The list shows it with its 320 px preview, and the original downloads.
    const card = page.getByTestId('asset').filter({ hasText: 'noise.png' });
    await expect(card.locator('img')).toHaveJSProperty('naturalWidth', 320);
    await expect(card).toContainText('1200×800');
    const original = await card.getByRole('link', { name: 'Original' }).getAttribute('href');
    const res = await page.request.get(original!);
    expect(res.status()).toBe(200);
    expect(res.headers()['content-disposition']).toMatch(/^attachment/);
    expect((await res.body()).equals(file)).toBe(true);
  });

  test('a refused file shows why, beside it', async ({ page }, info) => {
    await signUp(page, `refused-${info.project.name}`);
    await page.goto('/assets');
    await hydrated(page);
    await page.getByTestId('file-input').setInputFiles([
      { name: 'notes.png', mimeType: 'image/png', buffer: Buffer.from('<html>not a picture</html>') },
      {
        name: 'evil.svg',
        mimeType: 'image/svg+xml',
        buffer: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script></svg>'),
      },
    ]);
    const notes = page.getByTestId('upload').filter({ hasText: 'notes.png' });
    await expect(notes.getByTestId('upload-error')).toHaveText('This file is not a PNG, JPEG, WebP or SVG image.', {
      timeout: 20_000,
    });
    const evil = page.getByTestId('upload').filter({ hasText: 'evil.svg' });
    await expect(evil.getByTestId('upload-error')).toContainText('active or external content', { timeout: 20_000 });
    await expect(evil.getByTestId('upload-error')).toContainText('<script>');
    await expect(page.getByTestId('asset')).toHaveCount(0);
    allow(errors, /status of 415/);
  });

  test('a brand kit with a logo paints a generation', async ({ page }, info) => {
    test.setTimeout(90_000);
    await signUp(page, `kit-${info.project.name}`);
    await page.goto('/assets');
    await hydrated(page);
    const logo = Buffer.from(
      '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="80"><rect width="200" height="80" rx="16" fill="#e63946"/><circle cx="40" cy="40" r="24" fill="#f1faee"/></svg>',
    );
    await page.getByTestId('file-input').setInputFiles({ name: 'logo.svg', mimeType: 'image/svg+xml', buffer: logo });
    await expect(page.getByTestId('upload').filter({ hasText: 'logo.svg' }).getByTestId('upload-status')).toHaveText(
      /^Ready/,
      { timeout: 30_000 },
    );

    await page.goto('/brands');
    await hydrated(page);
    await page.getByLabel('Name', { exact: true }).fill('Acme');
    await page.getByLabel('Colours', { exact: true }).fill('#1D3557, #457b9d, #e63946');
    await page.getByLabel('Font', { exact: true }).selectOption('serif');
    await page.getByLabel('Logo', { exact: true }).selectOption({ label: 'logo.svg' });
    await page.getByRole('button', { name: 'Save kit' }).click();
    const kit = page.getByTestId('brand').filter({ hasText: 'Acme' });
    await expect(kit).toBeVisible();
    await expect(kit.locator('.swatch')).toHaveCount(3);
    await expect(kit.locator('img.brand-logo')).toBeVisible();
    // A bad colour is refused beside its field.
    await page.getByLabel('Name', { exact: true }).fill('Broken');
    await page.getByLabel('Colours', { exact: true }).fill('#12');
    await page.getByRole('button', { name: 'Save kit' }).click();
    await expect(page.getByText('“#12” is not a colour like #1d3557 or #f80.')).toBeVisible();

    await page.goto('/');
    await hydrated(page);
    const prompt = `Kit check ${info.project.name} ${Date.now()}`;
    await page.getByLabel('Prompt', { exact: true }).fill(prompt);
    await page.getByLabel('Images', { exact: true }).selectOption('1');
    await page.getByLabel('Brand kit', { exact: true }).selectOption({ label: 'Acme' });
    await page.getByRole('button', { name: 'Create' }).click();
    const card = page.getByTestId('generation').filter({ hasText: prompt });
    await expect(card).toHaveAttribute('data-status', 'succeeded', { timeout: 30_000 });
  });
});
