import { test, expect } from '@playwright/test';
import { PASSWORD, hydrated, signIn, signUp, uniqueEmail, watchConsole } from './helpers';

test.describe('accounts', () => {
  let errors: string[];
  test.beforeEach(async ({ page }) => {
    errors = watchConsole(page);
  });
  test.afterEach(() => {
    expect(errors, 'console errors').toEqual([]);
  });

  test('sign up, sign out, sign in again', async ({ page }, info) => {
    const email = await signUp(page, `cycle-${info.project.name}`);
    // The studio is there for a signed-in creator.
    await expect(page.getByLabel('Prompt', { exact: true })).toBeVisible();
    // Development cookies (the e2e server runs without APP_ENV): plain names, HttpOnly, Lax,
    // not Secure (plain http on 127.0.0.1).
    const cookies = await page.context().cookies();
    for (const name of ['sc_access', 'sc_refresh']) {
      const cookie = cookies.find((c) => c.name === name);
      expect(cookie, name).toBeDefined();
      expect(cookie, name).toMatchObject({ httpOnly: true, sameSite: 'Lax', secure: false, path: '/' });
    }
    await page.getByRole('button', { name: 'Sign out' }).click();
    await expect(page.getByTestId('signed-out')).toBeVisible();
    await expect(page.getByTestId('account-link')).toHaveCount(0);
    // Signed out for real: a reload does not bring the session back.
    await page.reload();
    await hydrated(page);
    await expect(page.getByTestId('signed-out')).toBeVisible();
    await signIn(page, email);
    await expect(page.getByLabel('Prompt', { exact: true })).toBeVisible();
  });

  test('sign-up problems are shown beside their fields', async ({ page }) => {
    await page.goto('/signup');
    await hydrated(page);
    await page.getByLabel('Email', { exact: true }).fill('not-an-email');
    await page.getByLabel('Password', { exact: true }).fill('short');
    await page.getByRole('button', { name: 'Create account' }).click();
    await expect(page.locator('#email-error')).toContainText('Enter an email address');
    await expect(page.locator('#password-error')).toContainText('at least 12 characters');
    await expect(page).toHaveURL(/\/signup/);
  });

  test('a wrong password says so beside the field, and the sixth failure locks the account', async ({ page, request }, info) => {
    const email = await signUp(page, `lock-${info.project.name}`);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await expect(page.getByTestId('signed-out')).toBeVisible();
    await page.goto('/signin');
    await hydrated(page);
    for (let i = 0; i < 5; i++) {
      // The form posts and comes back with the error, so each attempt fills it again.
      await page.getByLabel('Email', { exact: true }).fill(email);
      await page.getByLabel('Password', { exact: true }).fill(`wrong password ${i}!`);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await expect(page.locator('#password-error')).toHaveText(
        'That email and password do not match an account.',
      );
      await hydrated(page);
    }
    // Even the right password is refused now, with the wait.
    await page.getByLabel('Email', { exact: true }).fill(email);
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.locator('.form-error')).toHaveText(
      /^Too many failed sign-ins for this account\. Try again in \d+ minutes?\.$/,
    );
    await expect(page.locator('#password-error')).toHaveText('');
    await expect(page.getByTestId('account-link')).toHaveCount(0);
    await hydrated(page);
    // The form post came back as a redirect; a client calling the server function directly
    // gets the 429 with its stable code.
    const locked = await request.post('/api/auth/sign_in', { form: { email, password: PASSWORD } });
    expect(locked.status()).toBe(429);
    expect(await locked.json()).toMatchObject({ code: 'rate_limited' });
  });

  test('changing the password keeps this device in and retires the old password', async ({ page, browser }, info) => {
    const email = await signUp(page, `pw-${info.project.name}`);
    await page.goto('/account');
    await hydrated(page);
    await expect(page.getByTestId('tier')).toHaveText('Free');
    await page.getByLabel('Current password', { exact: true }).fill('not my password at all');
    await page.getByLabel('New password', { exact: true }).fill('an even better passphrase');
    await page.getByRole('button', { name: 'Change password' }).click();
    await expect(page.locator('#current_password-error')).toHaveText('That is not your current password.');
    await hydrated(page);

    await page.getByLabel('Current password', { exact: true }).fill(PASSWORD);
    await page.getByLabel('New password', { exact: true }).fill('an even better passphrase');
    await page.getByRole('button', { name: 'Change password' }).click();
    await expect(page.locator('.form-ok')).toContainText('Password changed.');
    // Still signed in here.
    await page.reload();
    await hydrated(page);
    await expect(page.getByTestId('account-email')).toHaveText(email);
    // A failed attempt after the success shows only its error, not the earlier success.
    await page.getByLabel('Current password', { exact: true }).fill(PASSWORD);
    await page.getByLabel('New password', { exact: true }).fill('yet another passphrase');
    await page.getByRole('button', { name: 'Change password' }).click();
    await expect(page.locator('#current_password-error')).toHaveText('That is not your current password.');
    await expect(page.locator('.form-ok')).toHaveCount(1);
    await expect(page.locator('.form-ok')).toHaveText('');
    await hydrated(page);

    // Elsewhere, only the new password works.
    const other = await browser.newContext();
    const second = await other.newPage();
    const otherErrors = watchConsole(second);
    await second.goto('/signin');
    await hydrated(second);
    await second.getByLabel('Email', { exact: true }).fill(email);
    await second.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await second.getByRole('button', { name: 'Sign in' }).click();
    await expect(second.locator('#password-error')).toContainText('do not match');
    await hydrated(second);
    await signIn(second, email, 'an even better passphrase');
    expect(otherErrors).toEqual([]);
    await other.close();
  });

  test('another device can be signed out from the devices list', async ({ page, browser }, info) => {
    const email = await signUp(page, `devices-${info.project.name}`);
    const laptop = await browser.newContext();
    const second = await laptop.newPage();
    const otherErrors = watchConsole(second);
    await signIn(second, email);

    await page.goto('/account');
    await hydrated(page);
    const sessions = page.getByTestId('sessions').locator('li');
    await expect(sessions).toHaveCount(2);
    const here = sessions.filter({ hasText: 'This device' });
    const there = sessions.filter({ hasNotText: 'This device' });
    await expect(here).toHaveCount(1);
    await expect(here.getByRole('button', { name: 'Sign out' })).toHaveCount(0);
    await expect(there).toContainText('127.0.0.1');
    await there.getByRole('button', { name: 'Sign out' }).click();
    await expect(page).toHaveURL(/\/account$/);
    await hydrated(page);
    await expect(sessions).toHaveCount(1);
    await expect(sessions).toContainText('This device');
    // This device is still signed in.
    await expect(page.getByTestId('account-link')).toHaveText(email);

    // The other browser is signed out on its next page load.
    await second.goto('/');
    await hydrated(second);
    await expect(second.getByTestId('signed-out')).toBeVisible();
    expect(otherErrors).toEqual([]);
    await laptop.close();
  });

  test('sign out everywhere ends every session, this one included', async ({ page, browser }, info) => {
    const email = await signUp(page, `everywhere-${info.project.name}`);
    const tablet = await browser.newContext();
    const second = await tablet.newPage();
    const otherErrors = watchConsole(second);
    await signIn(second, email);

    await page.goto('/account');
    await hydrated(page);
    await page.getByRole('button', { name: 'Sign out everywhere' }).click();
    await expect(page.getByTestId('signed-out')).toBeVisible();
    await expect(page.getByTestId('account-link')).toHaveCount(0);
    await second.goto('/account');
    await hydrated(second);
    await expect(second.getByText('You are signed out.')).toBeVisible();
    await second.goto('/');
    await hydrated(second);
    await expect(second.getByTestId('signed-out')).toBeVisible();
    // Signing in again works: only the sessions ended, not the account.
    await signIn(page, email);
    expect(otherErrors).toEqual([]);
    await tablet.close();
  });

  test('the account pages fit the screen', async ({ page }, info) => {
    await signUp(page, `layout-${info.project.name}`);
    for (const path of ['/account', '/signin', '/signup']) {
      await page.goto(path);
      await hydrated(page);
      const overflow = await page.evaluate(
        () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
      );
      expect(overflow, path).toBeLessThanOrEqual(0);
    }
  });
});

test.describe('accounts without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('sign in and out with plain form posts', async ({ page }, info) => {
    const email = await signUp(page, `nojs-acct-${info.project.name}`, false);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await expect(page.getByTestId('signed-out')).toBeVisible();
    await page.goto('/signin');
    await page.getByLabel('Email', { exact: true }).fill(email);
    await page.getByLabel('Password', { exact: true }).fill('definitely wrong');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.locator('#password-error')).toContainText('do not match');
    await page.getByLabel('Email', { exact: true }).fill(email);
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByTestId('account-link')).toHaveText(email);
  });
});

test('signing in with an unknown email reveals nothing', async ({ page }) => {
  const errors = watchConsole(page);
  await page.goto('/signin');
  await hydrated(page);
  await page.getByLabel('Email', { exact: true }).fill(uniqueEmail('nobody'));
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.locator('#password-error')).toHaveText('That email and password do not match an account.');
  expect(errors).toEqual([]);
});
