// The demo site in a real browser: headless Chromium (Debian's
// /usr/bin/chromium) driven through playwright-core.
//
//   node tests/browser/flow.mjs BASE_URL OUT_DIR
//
// Loads the home page, signs in, reloads (same session, one more visit),
// uploads a file through the upload form, sees it listed, deletes it, visits
// the custom 404 page, the directory listing, the redirect and a CGI form,
// signs out, and checks that a name full of markup is shown as text. Writes
// the screenshots NN-*.png into OUT_DIR (and failure.png when a step fails).
//
// Exit status: 0 when every expectation held; 1 with "FAILED at step ..." on
// stderr when one did not; 2 for bad arguments or a browser that would not
// start. Every wait gives up after WAIT_MS, and the whole run after RUN_MS.
// tests/browser.rs runs this against a private copy of the shipped site.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const WAIT_MS = 10_000;
const LAUNCH_MS = 30_000;
const RUN_MS = 120_000;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

const [BASE_ARG, OUT_DIR] = process.argv.slice(2);
if (!BASE_ARG || !OUT_DIR) {
  console.error('usage: node flow.mjs BASE_URL OUT_DIR');
  process.exit(2);
}
const BASE = BASE_ARG.replace(/\/+$/, '');
const url = (p) => BASE + p;

/** An expectation that did not hold: the message says what and why. */
class Unmet extends Error {}

function expect(cond, message) {
  if (!cond) throw new Unmet(message);
}

/** Wait until `locator` (described as `what`) shows `text`; on timeout say
 * what it showed instead. */
async function expectText(locator, text, what) {
  try {
    await locator.filter({ hasText: text }).first().waitFor({ state: 'visible', timeout: WAIT_MS });
  } catch (e) {
    const shown = await locator.first().innerText({ timeout: 1000 }).catch(() => '(nothing)');
    throw new Unmet(`${what} should show ${JSON.stringify(text)} within ${WAIT_MS} ms; ` +
      `it shows ${JSON.stringify(shown.trim().slice(0, 200))}`);
  }
}

async function expectStatus(response, status, what) {
  expect(response, `${what}: no response`);
  expect(response.status() === status,
    `${what}: expected HTTP ${status}, got ${response.status()} for ${response.url()}`);
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'localserver-browser-'));
const profile = path.join(tmp, 'profile');
fs.mkdirSync(OUT_DIR, { recursive: true });

let context;
let page;
let current = 'start';
const pageErrors = [];
const shots = [];
const started = Date.now();

async function shot(name) {
  const file = path.join(OUT_DIR, name);
  // Pages with the session badge are complete once /session.js filled it.
  if (await page.locator('#user-badge').count() > 0) {
    await page.locator('#user-badge[data-ready]').waitFor({ timeout: WAIT_MS }).catch(() => {
      throw new Unmet(`${name}: the session badge was never filled in (/session.js)`);
    });
  }
  await page.screenshot({ path: file, fullPage: true, animations: 'disabled', timeout: WAIT_MS });
  shots.push(file);
}

async function step(name, body) {
  current = name;
  const t0 = Date.now();
  await body();
  console.log(`ok   ${name} (${Date.now() - t0} ms)`);
}

async function sid() {
  const c = (await context.cookies(BASE)).find((c) => c.name === 'SID');
  return c;
}

/** Click something that navigates, and wait for the page it leads to. */
async function clickAndWait(locator, urlPattern) {
  await Promise.all([
    page.waitForURL(urlPattern, { timeout: WAIT_MS }),
    locator.click({ timeout: WAIT_MS }),
  ]);
  await page.waitForLoadState('load', { timeout: WAIT_MS });
}

const HOME = url('/');
const LOGIN = /\/cgi-bin\/login\.py(\?.*)?$/;
const NAME = 'Ada Lovelace';

async function signIn(name) {
  await clickAndWait(page.locator('#user-badge a'), LOGIN);
  await expectText(page.locator('h1'), 'Sign in', 'the login page heading');
  await page.locator('#name').fill(name);
  await clickAndWait(page.locator('#signin'), HOME);
}

async function signOut() {
  await clickAndWait(page.locator('#user-badge a'), LOGIN);
  await expectText(page.locator('h1'), 'Signed in', 'the account page heading');
  await clickAndWait(page.locator('#signout'), HOME);
  await expectText(page.locator('#session-status'), 'Not signed in', 'the home page after signing out');
}

async function visits() {
  const v = await page.locator('#session-visits').getAttribute('data-visits', { timeout: WAIT_MS });
  return Number(v);
}

async function flow() {
  let firstSid;

  await step('home page: not signed in, a session cookie', async () => {
    await expectStatus(await page.goto(HOME), 200, 'GET /');
    await expectText(page.locator('#session-status'), 'Not signed in', 'the home page session panel');
    await page.locator('#session-visits[data-visits]').waitFor({ timeout: WAIT_MS });
    const c = await sid();
    expect(c, 'the first visit set no SID cookie');
    expect(/^[0-9a-f]{72}$/.test(c.value), `SID is not 72 hex digits: ${c.value}`);
    expect(c.httpOnly, 'the SID cookie is not HttpOnly');
    expect(c.sameSite === 'Lax', `the SID cookie is SameSite=${c.sameSite}, not Lax`);
    expect(c.path === '/', `the SID cookie has Path=${c.path}`);
    firstSid = c.value;
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    expect(bg === 'rgb(251, 250, 247)', `style.css did not apply (body background ${bg})`);
    await shot('01-home.png');
  });

  await step('sign in through the login page', async () => {
    await signIn(NAME);
    await expectText(page.locator('#session-status'), `Signed in as ${NAME}`, 'the home page session panel');
    await expectText(page.locator('#user-badge'), NAME, 'the header badge');
    // Signing in rotates the id (X-Session-Rotate): a planted one is useless.
    const signedIn = (await sid()).value;
    expect(signedIn !== firstSid, 'signing in kept the session id');
    firstSid = signedIn;
    await shot('02-signed-in.png');
  });

  await step('reload: same session, one more visit', async () => {
    const before = await visits();
    await page.reload();
    await expectText(page.locator('#session-status'), `Signed in as ${NAME}`, 'the home page after a reload');
    await page.waitForFunction((n) => {
      const v = document.getElementById('session-visits');
      return v && Number(v.dataset.visits) > n;
    }, before, { timeout: WAIT_MS }).catch(async () => {
      throw new Unmet(`the visit counter did not go past ${before} (shows ${await visits()})`);
    });
    expect((await sid()).value === firstSid, 'the reload got a new session id');
  });

  const fileName = `browser-${process.pid}-${Date.now().toString(36)}.txt`;
  const fileBody = `uploaded by tests/browser/flow.mjs at ${new Date().toISOString()}\n`;
  const localFile = path.join(tmp, fileName);
  fs.writeFileSync(localFile, fileBody);
  const row = () => page.locator('#files tr', { hasText: fileName });

  await step('upload a file through the form', async () => {
    await clickAndWait(page.locator('header nav a[href="/upload.html"]'), url('/upload.html'));
    await expectText(page.locator('#user-badge'), NAME, 'the upload page header badge');
    await page.waitForFunction(() => !document.getElementById('files').textContent.includes('Loading'),
      null, { timeout: WAIT_MS });
    expect(await row().count() === 0, `${fileName} is listed before it was uploaded`);
    await page.locator('#file').setInputFiles(localFile);
    await page.locator('#upload button[type=submit]').click();
    await expectText(page.locator('#status'), '201', 'the upload status');
    await row().waitFor({ timeout: WAIT_MS }).catch(() => {
      throw new Unmet(`${fileName} is not listed after the upload`);
    });
    const href = await row().locator('a').getAttribute('href');
    expect(href === `/uploads/${fileName}`, `the listed link is ${href}`);
    const got = await context.request.get(url(href), { timeout: WAIT_MS });
    expect(got.status() === 200, `GET ${href}: ${got.status()}`);
    expect((await got.text()) === fileBody, `GET ${href} does not give back the uploaded bytes`);
    await shot('03-uploaded.png');
  });

  await step('delete it with its Delete button', async () => {
    await row().getByRole('button', { name: `Delete ${fileName}` }).click();
    await expectText(page.locator('#status'), '204', 'the delete status');
    await row().waitFor({ state: 'detached', timeout: WAIT_MS }).catch(() => {
      throw new Unmet(`${fileName} is still listed after its Delete button`);
    });
    const got = await context.request.get(url(`/uploads/${fileName}`), { timeout: WAIT_MS });
    expect(got.status() === 404, `GET /uploads/${fileName} after the delete: ${got.status()}`);
    await shot('04-deleted.png');
  });

  await step('a missing page gets the custom 404', async () => {
    await expectStatus(await page.goto(url('/no-such-page')), 404, 'GET /no-such-page');
    await expectText(page.locator('h1'), 'Nothing here.', 'the 404 page heading');
    await expectText(page.locator('#user-badge'), NAME, 'the 404 page header badge');
    await shot('05-not-found.png');
  });

  await step('the directory listing', async () => {
    await expectStatus(await page.goto(url('/files/')), 200, 'GET /files/');
    for (const name of ['readme.txt', 'data.json', 'sub/']) {
      await expectText(page.locator('body'), name, 'the /files/ listing');
    }
    await shot('06-listing.png');
  });

  await step('/old redirects home', async () => {
    const r = await page.goto(url('/old'));
    await expectStatus(r, 200, 'GET /old, redirected');
    expect(r.url() === HOME, `/old led to ${r.url()}`);
    const from = r.request().redirectedFrom();
    const first = from && await from.response();
    expect(first && first.status() === 301, `/old answered ${first ? first.status() : 'no redirect'}`);
    await expectText(page.locator('#session-status'), `Signed in as ${NAME}`, 'the home page after /old');
  });

  await step('a CGI form', async () => {
    await clickAndWait(page.locator('header nav a[href="/cgi-bin/form.py"]'), url('/cgi-bin/form.py'));
    await page.locator('form[method=post]:not([enctype]) input[name=name]').fill('Grace Hopper');
    await clickAndWait(page.locator('form[method=post]:not([enctype]) button[type=submit]'),
      url('/cgi-bin/form.py'));
    await expectText(page.locator('table'), 'Grace Hopper', 'the form echo');
  });

  await step('sign out ends the session', async () => {
    await clickAndWait(page.locator('#user-badge a'), LOGIN);
    await expectText(page.locator('#current-user'), NAME, 'the account page');
    await shot('07-account.png');
    await clickAndWait(page.locator('#signout'), HOME);
    await expectText(page.locator('#session-status'), 'Not signed in', 'the home page after signing out');
    await expectText(page.locator('#user-badge'), 'Sign in', 'the header badge after signing out');
    const c = await sid();
    expect(c && c.value !== firstSid, 'signing out kept the same session id');
    await shot('08-signed-out.png');
  });

  await step('a name with markup is shown as text', async () => {
    const evil = '<i>Eve</i> & "co"';
    await signIn(evil);
    await expectText(page.locator('#session-status'), `Signed in as ${evil}`, 'the home page session panel');
    expect(await page.locator('#session-status i, #user-badge i').count() === 0,
      'the name was inserted as HTML on the home page');
    await clickAndWait(page.locator('#user-badge a'), LOGIN);
    const shown = await page.locator('#current-user').innerText({ timeout: WAIT_MS });
    expect(shown === evil, `the login page shows ${JSON.stringify(shown)}`);
    expect(await page.locator('#current-user i').count() === 0, 'login.py echoed the name unescaped');
    await clickAndWait(page.locator('#signout'), HOME);
    await expectText(page.locator('#session-status'), 'Not signed in', 'the home page after signing out');
  });

  expect(pageErrors.length === 0, `JavaScript errors on the pages: ${pageErrors.join('; ')}`);
}

async function main() {
  const watchdog = setTimeout(() => {
    console.error(`browser flow: FAILED: still running after ${RUN_MS} ms (at step '${current}')`);
    process.exit(1);
  }, RUN_MS);
  watchdog.unref();

  try {
    // launchPersistentContext gives Chromium this fresh folder as its
    // --user-data-dir (Playwright refuses the flag in `args`).
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
        '--disable-background-networking', '--disable-component-update',
        '--disable-sync', '--disable-quic',
      ],
      viewport: { width: 1200, height: 800 },
      deviceScaleFactor: 1,
      timeout: LAUNCH_MS,
    });
  } catch (e) {
    console.error(`browser flow: could not start ${CHROMIUM}: ${e.message}`);
    fs.rmSync(tmp, { recursive: true, force: true });
    process.exit(2);
  }
  context.setDefaultTimeout(WAIT_MS);
  context.setDefaultNavigationTimeout(WAIT_MS);
  page = context.pages()[0] || await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(`${page.url()}: ${e.message}`));

  let code = 0;
  try {
    await flow();
    console.log(`browser flow: all steps passed in ${Date.now() - started} ms; screenshots:`);
    for (const s of shots) console.log(`  ${s}`);
  } catch (e) {
    code = 1;
    const why = e instanceof Unmet ? e.message : (e.stack || String(e));
    console.error(`browser flow: FAILED at step '${current}': ${why}`);
    console.error(`  (page was ${page.url()})`);
    await page.screenshot({ path: path.join(OUT_DIR, 'failure.png'), fullPage: true, timeout: WAIT_MS })
      .then(() => console.error(`  screenshot: ${path.join(OUT_DIR, 'failure.png')}`))
      .catch(() => {});
  } finally {
    await context.close().catch(() => {});
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  process.exit(code);
}

main();
