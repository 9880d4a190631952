// Loads each bpftsim Perfetto/Chrome trace file given on the command line into the trace engine of
// Chromium's DevTools Performance panel (@paulirish/trace_engine), offline, as the panel would,
// and checks that the engine raised no warning (its "Begin/End events mismatch" among them) and
// that every slice of the file (each complete "X" event) is among the engine's thread entries.
// Prints one line per file; exits 1 when any file fails. Used by tools/check-perfetto-devtools.sh.
import fs from 'node:fs';
import {analyzeEvents} from '@paulirish/trace_engine/analyze-trace.mjs';

let failed = 0;
for (const file of process.argv.slice(2)) {
  const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
  const events = doc.traceEvents;
  const want = new Map();  // "name@<ts in ns>" -> count of X events
  for (const e of events)
    if (e.ph === 'X') {
      const key = `${e.name}@${Math.round(e.ts * 1000)}ns`;
      want.set(key, (want.get(key) ?? 0) + 1);
    }
  const warnings = [];
  const saved = [console.warn, console.error];
  console.warn = (...a) => warnings.push(a.join(' '));
  console.error = (...a) => warnings.push(a.join(' '));
  let parsed;
  try {
    parsed = (await analyzeEvents(events)).parsedTrace;
  } catch (err) {
    warnings.push(`parse failed: ${err}`);
  } finally {
    [console.warn, console.error] = saved;
  }
  const data = parsed ? (parsed.data ?? parsed) : null;
  const have = new Map();
  let entries = 0;
  if (data)
    for (const [, proc] of data.Renderer.processes)
      for (const [, thread] of proc.threads)
        for (const entry of thread.entries) {
          ++entries;
          const key = `${entry.name}@${Math.round(entry.ts * 1000)}ns`;
          have.set(key, (have.get(key) ?? 0) + 1);
        }
  const missing = [];
  for (const [key, n] of want)
    if ((have.get(key) ?? 0) < n) missing.push(key);
  const slices = [...want.values()].reduce((a, b) => a + b, 0);
  if (data && Object.keys(data.Warnings?.perWarning ?? {}).length)
    warnings.push(`engine warnings: ${JSON.stringify(Object.keys(data.Warnings.perWarning))}`);
  if (warnings.length || missing.length) {
    ++failed;
    console.log(`FAIL ${file}: ${slices} slices, ${entries} entries, ${warnings.length} warning(s)` +
                `${warnings.length ? ': ' + warnings.slice(0, 3).join(' | ') : ''}` +
                `${missing.length ? '; missing ' + missing.slice(0, 5).join(', ') : ''}`);
  } else {
    console.log(`ok ${file}: ${slices} slices, all loaded, no warning`);
  }
}
process.exit(failed ? 1 : 0);
