import { defineConfig, devices } from '@playwright/test';
import * as os from 'node:os';
import * as path from 'node:path';

// The specs drive Debian's Chromium (no browser download here) against the release build of
// `socialcraft serve`, started with no DATABASE_URL: it brings up its own PostgreSQL under
// E2E_DATA_DIR, exactly as an operator's first start would.
const port = process.env.E2E_PORT ?? '3400';
const baseURL = `http://127.0.0.1:${port}`;
const root = path.resolve(__dirname, '..');
const binary = process.env.E2E_BINARY ?? path.join(root, 'target/release/socialcraft');
const dataDir = process.env.E2E_DATA_DIR ?? path.join(os.tmpdir(), 'socialcraft-e2e');

export default defineConfig({
  testDir: './tests',
  timeout: 30_000,
  expect: { timeout: 10_000 },
  fullyParallel: true,
  workers: 2,
  forbidOnly: !!process.env.CI,
  retries: 0,
  reporter: [['list']],
  outputDir: path.join(os.tmpdir(), 'socialcraft-e2e-results'),
  use: {
    baseURL,
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
  },
  projects: [
    { name: 'desktop', use: { ...devices['Desktop Chrome'] } },
    { name: 'phone', use: { ...devices['Pixel 7'] } },
  ],
  webServer: {
    command: `${binary} serve`,
    cwd: root,
    url: `${baseURL}/api/ready`,
    reuseExistingServer: false,
    timeout: 120_000,
    stdout: 'pipe',
    stderr: 'pipe',
    // SIGTERM lets the server stop its embedded PostgreSQL on the way out.
    gracefulShutdown: { signal: 'SIGTERM', timeout: 10_000 },
    env: {
      LEPTOS_SITE_ADDR: `127.0.0.1:${port}`,
      LEPTOS_SITE_ROOT: 'target/site',
      LEPTOS_ENV: 'PROD',
      DATA_DIR: dataDir,
      // Both viewports' specs sign up and submit from 127.0.0.1 within seconds: lift the
      // per-IP limits. The limits themselves are tested in Rust (sign-in brute force
      // included); the UI's 429 messages, and the per-account lockout, in the specs.
      RATE_LIMIT_AUTH_PER_MINUTE: '1000',
      RATE_LIMIT_GENERATE_PER_MINUTE: '1000',
      RATE_LIMIT_API_PER_MINUTE: '10000',
      RATE_LIMIT_UPLOAD_PER_MINUTE: '1000',
      RATE_LIMIT_MEDIA_PER_MINUTE: '100000',
      RUST_LOG: 'warn,server::startup=info,server::pg_embedded=info',
    },
  },
});
