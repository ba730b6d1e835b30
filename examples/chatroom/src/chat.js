// Coolpy7 chat room: MQTT over WebSocket with MQTT.js.
//
// Topics (the original Coolpy7 chat room used the first one only, and
// its JSON; old clients still see joins and messages there):
//   coolpy/chatroom                 {"uid","cmd":"add"} joins, {"uid","cmd":"msg","msg"} chat
//   coolpy/chatroom/presence/<uid>  retained {"uid","cmd":"add"} while <uid> is online;
//                                   the client's will clears it if the connection drops
//   coolpy/chatroom/history/<slot>  retained copies of the last HISTORY messages, one per
//                                   slot, so that someone joining sees what was said
import mqtt from 'mqtt';

const ROOM = 'coolpy/chatroom';
const PRESENCE = ROOM + '/presence/';
const HISTORY = 50;
const HISTORY_TOPIC = ROOM + '/history/';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const brokerURL = params.get('broker') ||
  `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.hostname || 'localhost'}:${location.protocol === 'https:' ? 8084 : 8083}/mqtt`;

let client = null;
let uid = '';
let seq = 0; // highest message sequence number seen; slots are seq % HISTORY
const seen = new Set(); // message ids shown, as live and retained copies both arrive
const online = new Set();

function setStatus(text, state) {
  const s = $('status');
  s.textContent = text;
  s.dataset.state = state;
}

function renderUsers() {
  const list = $('users');
  list.replaceChildren(...[...online].sort().map((u) => {
    const li = document.createElement('li');
    li.textContent = u === uid ? `${u} (you)` : u;
    return li;
  }));
  $('count').textContent = String(online.size);
}

// addMessage shows a chat message in time order, once.
function addMessage(m) {
  if (typeof m.msg !== 'string' || seen.has(m.id)) return;
  seen.add(m.id);
  seq = Math.max(seq, m.seq || 0);
  const li = document.createElement('li');
  li.className = 'msg' + (m.uid === uid ? ' mine' : '');
  li.dataset.ts = String(m.ts || 0);
  const who = document.createElement('b');
  who.textContent = m.uid;
  const when = document.createElement('time');
  when.textContent = new Date(m.ts || Date.now()).toLocaleTimeString();
  li.append(who, ' ', when, document.createElement('br'), m.msg);
  const list = $('messages');
  const after = [...list.children].find((x) => Number(x.dataset.ts) > (m.ts || 0));
  list.insertBefore(li, after || null);
  while (list.children.length > 200) list.firstChild.remove();
  list.scrollTop = list.scrollHeight;
}

function notice(text) {
  const li = document.createElement('li');
  li.className = 'notice';
  li.dataset.ts = String(Date.now());
  li.textContent = text;
  $('messages').append(li);
}

function parse(payload) {
  try {
    return JSON.parse(new TextDecoder().decode(payload));
  } catch {
    return null;
  }
}

function onMessage(topic, payload) {
  if (topic.startsWith(PRESENCE)) {
    const who = topic.slice(PRESENCE.length);
    if (payload.length === 0) {
      if (online.delete(who)) notice(`${who} left`);
    } else {
      online.add(who);
    }
    renderUsers();
    return;
  }
  const m = parse(payload);
  if (!m || typeof m.uid !== 'string') return;
  if (m.cmd === 'msg') addMessage(m);
  if (m.cmd === 'add' && topic === ROOM && m.uid !== uid) notice(`${m.uid} joined`);
}

function join(name) {
  uid = name;
  const presence = PRESENCE + uid;
  client = mqtt.connect(brokerURL, {
    clientId: `chat-${uid}-${Math.random().toString(16).slice(2, 10)}`,
    protocolVersion: 5,
    clean: true,
    keepalive: 30,
    reconnectPeriod: 2000,
    connectTimeout: 5000,
    // If the connection drops, the broker clears our presence.
    will: { topic: presence, payload: '', qos: 1, retain: true },
  });
  // The browser test takes this client's session over to force a reconnect.
  document.body.dataset.clientId = client.options.clientId;
  client.on('connect', () => {
    setStatus(`online as ${uid}`, 'online');
    $('send').disabled = false;
    client.subscribe([ROOM, PRESENCE + '+', HISTORY_TOPIC + '+'], { qos: 1 }, (err) => {
      if (err) {
        notice(`subscribe failed: ${err.message}`);
        return;
      }
      // (Re)announce: after a reconnect the will may have cleared us.
      const hello = JSON.stringify({ uid, cmd: 'add' });
      client.publish(presence, hello, { qos: 1, retain: true });
      client.publish(ROOM, hello, { qos: 1 });
    });
  });
  client.on('reconnect', () => setStatus('reconnecting…', 'reconnecting'));
  client.on('offline', () => {
    setStatus('offline, retrying', 'offline');
    $('send').disabled = true;
  });
  client.on('error', (err) => notice(`error: ${err.message}`));
  client.on('message', onMessage);
  $('login').hidden = true;
  $('room').hidden = false;
  $('text').focus();
}

function send(text) {
  seq += 1;
  const m = { uid, cmd: 'msg', msg: text, ts: Date.now(), seq, id: `${uid}-${Date.now()}-${seq}` };
  const body = JSON.stringify(m);
  client.publish(ROOM, body, { qos: 1 });
  client.publish(HISTORY_TOPIC + (seq % HISTORY), body, { qos: 1, retain: true });
}

function leave() {
  if (!client) return;
  client.publish(PRESENCE + uid, '', { qos: 1, retain: true });
  client.end();
}

$('login').addEventListener('submit', (e) => {
  e.preventDefault();
  const name = $('name').value.trim().replace(/[+#/]/g, '');
  if (name) join(name);
});
$('compose').addEventListener('submit', (e) => {
  e.preventDefault();
  const text = $('text').value.trim();
  if (!text || !client || !client.connected) return;
  send(text);
  $('text').value = '';
});
window.addEventListener('pagehide', leave);
$('broker').textContent = brokerURL;
setStatus('not connected', 'offline');
