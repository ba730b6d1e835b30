// MQTT.js interop, run by TestMQTTJSInterop: one client over ws:// and one
// over mqtt://, each subscribed at QoS 1 and each publishing at QoS 1 to
// the other, with MQTT 3.1.1 and MQTT 5. Exits non-zero on any failure.
//
// Usage: WS_URL=ws://127.0.0.1:8083/mqtt MQTT_URL=mqtt://127.0.0.1:1883 node interop.mjs
import mqtt from 'mqtt';

const { WS_URL, MQTT_URL } = process.env;
if (!WS_URL || !MQTT_URL) {
  console.error('set WS_URL and MQTT_URL');
  process.exit(2);
}

const timeout = (ms, what) =>
  new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), ms).unref());

async function pair(version) {
  const opts = { protocolVersion: version, reconnectPeriod: 0, connectTimeout: 5000 };
  const ws = await mqtt.connectAsync(WS_URL, { ...opts, clientId: `mqttjs-ws-v${version}` });
  const tcp = await mqtt.connectAsync(MQTT_URL, { ...opts, clientId: `mqttjs-tcp-v${version}` });
  const topic = (side) => `interop/v${version}/${side}`;
  const got = { ws: [], tcp: [] };
  ws.on('message', (t, p, packet) => got.ws.push({ t, p: p.toString(), qos: packet.qos }));
  tcp.on('message', (t, p, packet) => got.tcp.push({ t, p: p.toString(), qos: packet.qos }));
  await ws.subscribeAsync(topic('ws'), { qos: 1 });
  await tcp.subscribeAsync(topic('tcp'), { qos: 1 });
  // publishAsync resolves on PUBACK.
  const big = 'x'.repeat(200000); // many WebSocket frames' worth
  await Promise.all([
    tcp.publishAsync(topic('ws'), 'from tcp', { qos: 1 }),
    tcp.publishAsync(topic('ws'), big, { qos: 1 }),
    ws.publishAsync(topic('tcp'), 'from ws', { qos: 1 }),
  ]);
  await Promise.race([
    new Promise((resolve) => {
      const check = () => (got.ws.length >= 2 && got.tcp.length >= 1 ? resolve() : setTimeout(check, 20));
      check();
    }),
    timeout(5000, `v${version} deliveries`),
  ]);
  const ok =
    got.ws[0].p === 'from tcp' && got.ws[1].p === big && got.tcp[0].p === 'from ws' &&
    [...got.ws, ...got.tcp].every((m) => m.qos === 1);
  await Promise.all([ws.endAsync(), tcp.endAsync()]);
  if (!ok) throw new Error(`v${version}: unexpected deliveries ${JSON.stringify({ ws: got.ws.length, tcp: got.tcp })}`);
  console.log(`MQTT ${version === 5 ? '5' : '3.1.1'}: ws:// <-> mqtt:// QoS 1 both ways ok`);
}

try {
  await pair(4);
  await pair(5);
} catch (err) {
  console.error(err);
  process.exit(1);
}
