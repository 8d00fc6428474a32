// Builds a large event log fast: records a real template (a few VMs driven through the service:
// add, start, unpause, shutdown, remove, Task.destroy), then appends copies of its vm/ and task/
// messages straight into the same store through the project's EventLog (core's encodeBatch), with
// fresh VM ids and task ids remapped to the seqs the copies get. Runs while no service is up.
const built = (pkg) => new URL(`../../packages/${pkg}/dist/index.js`, import.meta.url).href;

function remap(value, vmMap, taskMap) {
  if (typeof value === 'string') return vmMap.get(value) ?? value;
  if (Array.isArray(value)) return value.map((v) => remap(v, vmMap, taskMap));
  if (value instanceof Map) return new Map([...value].map(([k, v]) => [remap(k, vmMap, taskMap), remap(v, vmMap, taskMap)]));
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const out = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = k === 'taskId' && typeof v === 'string' && taskMap.has(v) ? taskMap.get(v) : remap(v, vmMap, taskMap);
    }
    return out;
  }
  return value;
}

/**
 * Appends copies of the template until the log holds `targetEvents` events.
 * `openStores({ sqlite, nats })` opens the (stopped) service's stores with the store package of its
 * mode (@xenops/store-sqlite or @xenops/store-nats). Returns {events, messages, seconds, copies}.
 */
export async function growLog(openStores, targetEvents, { inFlight = 1000, progress = () => {}, deadlineMs = 300_000 } = {}) {
  const [core, sqlite, nats] = await Promise.all([import(built('core')), import(built('store-sqlite')), import(built('store-nats'))]);
  const stores = await openStores({ sqlite, nats });
  const t0 = performance.now();
  try {
    const log = stores.log;
    const template = [];
    let existingEvents = 0;
    for await (const m of log.read(0)) {
      const events = core.decodeBatch(m.seq, m.data);
      existingEvents += events.length;
      if (m.stream.startsWith('vm/') || m.stream.startsWith('task/')) template.push({ seq: m.seq, stream: m.stream, events });
    }
    const perCopy = template.reduce((n, m) => n + m.events.length, 0);
    if (perCopy === 0) throw new Error('template log has no vm/ or task/ messages');
    const vmIds = new Set(template.filter((m) => m.stream.startsWith('vm/')).map((m) => m.stream.slice(3)));
    let head = await log.head();
    let events = existingEvents;
    let messages = 0;
    let copies = 0;
    let pending = [];
    while (events < targetEvents) {
      if (performance.now() - t0 > deadlineMs) {
        progress(`  log build hit its ${deadlineMs / 1000}s bound at ${events} events`);
        break;
      }
      const base = head; // template message i lands at base + i + 1 (appends are serialised in order)
      const vmMap = new Map([...vmIds].map((id) => [id, crypto.randomUUID()]));
      const taskMap = new Map(template.map((m, i) => [String(m.seq), String(base + i + 1)]));
      for (const m of template) {
        const stream = m.stream.startsWith('vm/')
          ? `vm/${vmMap.get(m.stream.slice(3))}`
          : `task/${taskMap.get(m.stream.slice(5)) ?? m.stream.slice(5)}`;
        const data = core.encodeBatch(m.events.map((e) => ({ audit: e.audit, body: remap(e.body, vmMap, taskMap) })));
        pending.push(log.append({ stream, data }));
        if (pending.length >= inFlight) {
          await Promise.all(pending);
          pending = [];
        }
      }
      head += template.length;
      messages += template.length;
      events += perCopy;
      copies++;
      if (copies % 2000 === 0) progress(`  log build: ${events} events`);
    }
    const seqs = await Promise.all(pending);
    const last = seqs.at(-1) ?? (await log.head());
    if (last !== head) throw new Error(`log build: seq drift (expected head ${head}, got ${last}); task ids would be wrong`);
    return { events, messages, copies, perCopy, templateMessages: template.length, seconds: (performance.now() - t0) / 1000 };
  } finally {
    await stores.close();
  }
}
