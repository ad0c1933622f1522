// Drives Debian's chromium (playwright-core, no browser download) against a running srsd:
// the console lists the stream and its clients, Kick removes a client, a 360 px phone screen
// does not scroll sideways, the player plays over HTTP-FLV and over HLS, and no page logs a
// JavaScript error. Run by tests/browser.rs, which starts srsd and ffmpeg:
//
//   SRSD_API=http://127.0.0.1:P SRSD_HTTP=http://127.0.0.1:Q SRSD_STREAM=live/NAME
//   [SRSD_KICK=1] [SRSD_SHOTS=DIR] [CHROMIUM=/usr/bin/chromium] node console.js
//
// Prints `ok: ...` per check and exits non-zero on the first failure (`FAIL: ...`).
'use strict';
const { chromium } = require('playwright-core');
const fs = require('fs');
const path = require('path');

const API = process.env.SRSD_API;
const HTTP = process.env.SRSD_HTTP;
const [APP, STREAM] = (process.env.SRSD_STREAM || 'live/livestream').split('/');
const SHOTS = process.env.SRSD_SHOTS || '';
// `user:password` of the API's Basic auth, which covers the console.
const AUTH = process.env.SRSD_AUTH ? process.env.SRSD_AUTH.split(':') : null;
const creds = AUTH ? { httpCredentials: { username: AUTH[0], password: AUTH[1] } } : {};
// The flags that work on these machines (no sandbox as root, no background network calls).
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required'];

const errors = [];
function watch(page, label) {
  page.on('pageerror', (e) => errors.push(`${label}: uncaught ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`${label}: console.error ${m.text()}`);
  });
}
function ok(msg) { console.log(`ok: ${msg}`); }
async function shot(page, name) {
  if (!SHOTS) return;
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, name) });
  ok(`screenshot ${name}`);
}

// The <video>'s currentTime advances by at least `by` seconds within `ms`.
async function plays(page, ms, by) {
  await page.waitForFunction(() => document.getElementById('video').currentTime > 0.5,
    null, { timeout: ms, polling: 200 });
  const t1 = await page.evaluate(() => document.getElementById('video').currentTime);
  await page.waitForFunction((t) => document.getElementById('video').currentTime > t,
    t1 + by, { timeout: ms, polling: 200 });
  return t1;
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args: ARGS,
  });
  try {
    // 1. Desktop: the stream and its clients are listed within 5 s.
    const ctx = await browser.newContext({
      viewport: { width: 1280, height: 900 }, colorScheme: 'light', ...creds,
    });
    const page = await ctx.newPage();
    watch(page, 'console');
    page.on('dialog', (d) => d.accept());
    if (AUTH) {
      const r = await fetch(`${API}/console/`);
      if (r.status !== 401) throw new Error(`the console without credentials answered ${r.status}`);
      ok('the console asks for the API credentials');
    }
    await page.goto(`${API}/`);
    if (!page.url().endsWith('/console/')) throw new Error(`/ went to ${page.url()}, not /console/`);
    await page.waitForFunction(() => /\d/.test(document.querySelector('#tiles').textContent),
      null, { timeout: 5000 });
    ok('/ redirects to the console; the overview shows numbers');
    await page.waitForTimeout(2500); // a second sample: rates and fps
    await shot(page, 'console-overview.png');
    await page.click('nav a[data-tab=streams]');
    const card = page.locator('.stream', { hasText: `/${APP}/${STREAM}` });
    await card.waitFor({ timeout: 5000 });
    await page.waitForFunction(() => /H264/.test(document.querySelector('.stream').textContent),
      null, { timeout: 5000 });
    const text = await card.innerText();
    for (const want of ['HTTP-FLV', 'HLS', 'RTMP', 'HTTP-TS', 'Play']) {
      if (!text.includes(want)) throw new Error(`stream card lacks ${want}: ${text}`);
    }
    ok('the console lists the stream with codecs and play URLs');
    await shot(page, 'console-streams.png');
    await page.click('nav a[data-tab=clients]');
    await page.locator('.client', { hasText: 'publish' }).first().waitFor({ timeout: 5000 });
    ok('the console lists the publisher as a client');
    if (process.env.SRSD_KICK === '1') {
      const player = page.locator('.client', { hasText: 'rtmp-play' }).first();
      await player.waitFor({ timeout: 5000 });
      const id = await player.getAttribute('data-id');
      await player.locator('button[data-kick]').click();
      await page.locator(`.client[data-id="${id}"]`).waitFor({ state: 'detached', timeout: 5000 });
      ok(`Kick removed client #${id}`);
    }
    await page.click('nav a[data-tab=config]');
    await page.waitForFunction(() => /\[http_api\]/.test(document.getElementById('configtext').textContent),
      null, { timeout: 5000 });
    const cfg = await page.textContent('#configtext');
    if (cfg.includes('hunter2')) throw new Error('the config shows a password');
    if (await page.isHidden('#reload')) throw new Error('no Reload button though raw_api allows it');
    ok('the config page shows the running config, password masked, and Reload');
    // Where raw_api does not allow a reload (the default), there is no button.
    const nr = await ctx.newPage();
    watch(nr, 'no-reload');
    await nr.route('**/console/info.json', async (r) => {
      const res = await r.fetch();
      const j = await res.json();
      j.reload = false;
      await r.fulfill({ response: res, json: j });
    });
    await nr.goto(`${API}/console/#config`);
    await nr.waitForFunction(() => /updated/.test(document.getElementById('status').textContent),
      null, { timeout: 5000 });
    if (await nr.isVisible('#reload')) throw new Error('a Reload button though raw_api forbids it');
    await nr.close();
    ok('no Reload button when raw_api does not allow it');

    // 2. Phone: 360 px wide, no horizontal scroll on any tab; in the dark scheme (the
    // desktop pages above are light).
    const phone = await browser.newContext({
      viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true, colorScheme: 'dark',
      ...creds,
    });
    const pp = await phone.newPage();
    watch(pp, 'phone');
    for (const tab of ['overview', 'streams', 'clients', 'config']) {
      await pp.goto(`${API}/console/#${tab}`);
      await pp.waitForFunction(() => /updated/.test(document.getElementById('status').textContent),
        null, { timeout: 5000 });
      const w = await pp.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
      if (w[0] > w[1]) throw new Error(`#${tab} at 360 px is ${w[0]} px wide`);
      if (tab === 'streams') await shot(pp, 'console-phone.png');
    }
    await pp.goto(`${API}/console/play.html?app=${APP}&stream=${STREAM}&mode=flv`);
    await plays(pp, 15000, 0.5);
    const pw = await pp.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    if (pw[0] > pw[1]) throw new Error(`the player at 360 px is ${pw[0]} px wide`);
    ok('no horizontal overflow at 360 px (console tabs and player)');

    // 3. The HTTP server's index links to the player, which plays HTTP-FLV, then HLS.
    const pl = await ctx.newPage();
    watch(pl, 'player');
    await pl.goto(`${HTTP}/`);
    await pl.click(`a[href*="stream=${STREAM}"]`);
    await pl.waitForURL(/play\.html/, { timeout: 5000 });
    await pl.evaluate(() => document.getElementById('flv').click());
    const t = await plays(pl, 15000, 1);
    if ((await pl.evaluate(() => window.srsdPlayer.mode)) !== 'flv') throw new Error('not HTTP-FLV');
    ok(`HTTP-FLV plays (currentTime ${t.toFixed(1)} s and advancing)`);
    await shot(pl, 'player.png');
    await pl.click('#hls');
    await pl.waitForFunction(() => window.srsdPlayer.mode === 'hls', null, { timeout: 2000 });
    const th = await plays(pl, 30000, 1);
    ok(`HLS plays (currentTime ${th.toFixed(1)} s and advancing)`);
    const lat = await pl.textContent('#latency');
    if (!/latency \d/.test(lat)) throw new Error(`no latency shown: ${lat}`);
    ok(`the player shows ${lat}`);
    // On the API port too (same page, same origin as the console).
    const pa = await ctx.newPage();
    watch(pa, 'player-api');
    await pa.goto(`${API}/console/play.html?app=${APP}&stream=${STREAM}&mode=flv`);
    await plays(pa, 15000, 1);
    ok('the player on the API port plays HTTP-FLV');

    // A DVR recording over HTTP VOD, in the same player page.
    if (process.env.SRSD_VOD) {
      const pv = await ctx.newPage();
      watch(pv, 'player-vod');
      await pv.goto(`${HTTP}/console/play.html?vod=${encodeURIComponent(process.env.SRSD_VOD)}`);
      await plays(pv, 15000, 1);
      if ((await pv.evaluate(() => window.srsdPlayer.mode)) !== 'vod') throw new Error('not VOD');
      ok(`a recording plays over HTTP VOD (${process.env.SRSD_VOD})`);
    }

    // Without the libraries the player says how to get them (its 404s are expected here,
    // so this page is not watched for errors).
    const miss = await browser.newPage();
    await miss.route('**/lib/**', (r) => r.fulfill({ status: 404, body: 'not found' }));
    await miss.goto(`${HTTP}/console/play.html?app=${APP}&stream=${STREAM}&mode=flv`);
    await miss.waitForFunction(() => /web-assets\.sh/.test(document.getElementById('note').textContent),
      null, { timeout: 5000 });
    await miss.close();
    ok('without the player libraries the page says how to install them');

    const bad = errors;
    if (bad.length) throw new Error(`JavaScript errors:\n${bad.join('\n')}`);
    ok('no JavaScript error in any page');
  } finally {
    await browser.close();
  }
}

main().then(() => process.exit(0), (e) => {
  console.log(`FAIL: ${e.message}`);
  if (errors.length) console.log(`page errors:\n${errors.join('\n')}`);
  process.exit(1);
});
