// The chat-room demo in headless Chromium, run by TestChatRoomInChromium:
// alice and bob join from two browser contexts and see each other online,
// alice says hello and bob's page shows it (screenshot), carol joins later
// and finds it in the history, and bob's connection is cut (his session
// taken over by another client) and comes back by itself, still receiving.
//
// Usage: PAGE_URL=http://127.0.0.1:8080/ BROKER_URL=ws://127.0.0.1:8083/mqtt \
//        SCREENSHOT=/tmp/chat.png node chat.mjs
import { chromium } from 'playwright-core';
import mqtt from 'mqtt';

const { PAGE_URL, BROKER_URL, SCREENSHOT } = process.env;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const WAIT = 10000;

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});

async function join(name) {
  const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') console.error(`[${name}] console: ${m.text()}`);
  });
  page.on('pageerror', (e) => console.error(`[${name}] page error: ${e.message}`));
  await page.goto(`${PAGE_URL}?broker=${encodeURIComponent(BROKER_URL)}`);
  await page.fill('#name', name);
  await page.click('#join');
  await page.waitForSelector('#status[data-state=online]', { timeout: WAIT });
  return page;
}

const online = (page, ...names) =>
  page.waitForFunction(
    (want) => {
      const text = document.getElementById('users').textContent;
      return want.every((n) => text.includes(n));
    },
    names,
    { timeout: WAIT },
  );

const shows = (page, text) =>
  page.waitForFunction((t) => [...document.querySelectorAll('#messages li.msg')].some((li) => li.textContent.includes(t)), text, {
    timeout: WAIT,
  });

async function say(page, text) {
  await page.fill('#text', text);
  await page.press('#text', 'Enter');
}

let failed = false;
try {
  const alice = await join('alice');
  const bob = await join('bob');
  await online(alice, 'alice', 'bob');
  await online(bob, 'alice', 'bob');
  console.log('presence: alice and bob see each other');

  await say(alice, 'hello from alice');
  await shows(bob, 'hello from alice');
  await bob.screenshot({ path: SCREENSHOT });
  console.log(`message: bob's page shows alice's; screenshot ${SCREENSHOT}`);

  const carol = await join('carol');
  await shows(carol, 'hello from alice');
  await online(carol, 'alice', 'bob', 'carol');
  console.log('history: carol, joining later, sees the message');

  // Take bob's session over: the broker closes his connection, and MQTT.js
  // must reconnect on its own.
  const id = await bob.evaluate(() => document.body.dataset.clientId);
  const intruder = await mqtt.connectAsync(BROKER_URL, { clientId: id, protocolVersion: 5, reconnectPeriod: 0 });
  await bob.waitForSelector('#status[data-state=offline], #status[data-state=reconnecting]', { timeout: WAIT });
  await bob.waitForSelector('#status[data-state=online]', { timeout: WAIT });
  intruder.end(true);
  await online(alice, 'bob');
  await say(alice, 'still there, bob?');
  await shows(bob, 'still there, bob?');
  await alice.screenshot({ path: SCREENSHOT.replace(/\.png$/, '-alice.png') });
  console.log('reconnect: bob came back by himself and receives again');
} catch (err) {
  failed = true;
  console.error(err);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
