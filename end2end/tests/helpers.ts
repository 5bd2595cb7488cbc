import { expect, type Page } from '@playwright/test';

/** The password every spec account uses (12+ characters, as the rules ask). */
export const PASSWORD = 'correct horse battery staple';

/**
 * Collects browser errors; each spec fails on any it did not expect. Chromium logs refused
 * requests as failed loads: a spec drops the ones it provokes on purpose with `allow` (a 422
 * is always expected: it is the answer to input the server refuses, shown beside the field).
 */
export function watchConsole(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !/status of 422 /.test(msg.text())) errors.push(msg.text());
  });
  page.on('pageerror', (err) => errors.push(err.message));
  return errors;
}

/** Drops the errors matching `pattern` (ones a spec caused deliberately). */
export function allow(errors: string[], pattern: RegExp) {
  errors.splice(0, errors.length, ...errors.filter((e) => !pattern.test(e)));
}

/** Waits until the WASM has hydrated the page. */
export async function hydrated(page: Page) {
  await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);
}

/** A fresh address, unique across parallel workers and projects. */
export function uniqueEmail(label: string): string {
  return `${label}-${Date.now()}-${Math.floor(Math.random() * 1e9)}@example.com`.toLowerCase();
}

/**
 * Signs up a new account through the real form and waits for the signed-in home page. With
 * `js` false the form is a plain HTML post (the page must have JavaScript disabled).
 */
export async function signUp(page: Page, label: string, js = true): Promise<string> {
  const email = uniqueEmail(label);
  await page.goto('/signup');
  if (js) await hydrated(page);
  await page.getByLabel('Email', { exact: true }).fill(email);
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByTestId('account-link')).toHaveText(email);
  if (js) await hydrated(page);
  return email;
}

/** Signs in through the real form and waits for the signed-in home page. */
export async function signIn(page: Page, email: string, password = PASSWORD) {
  await page.goto('/signin');
  await hydrated(page);
  await page.getByLabel('Email', { exact: true }).fill(email);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('account-link')).toHaveText(email);
  await hydrated(page);
}
