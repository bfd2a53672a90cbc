/** Registry-side CPU, read from /proc: how much of a run the registries spent working. Linux only. */
import { readdirSync, readFileSync } from 'node:fs';
import type { TestRegistry } from '../test/support/registry.js';

const pids = new Map<TestRegistry, number>();

/** CPU seconds (user + system) a registry process has used so far, from /proc/<pid>/stat; 0 when unknown. */
export function registryCpu(registry: TestRegistry): number {
  let pid = pids.get(registry);
  if (pid === undefined) {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
        if (cmdline.includes(registry.configFile) && cmdline.includes('serve')) { pid = Number(entry); break; }
      } catch { /* exited meanwhile */ }
    }
    if (pid === undefined) return 0;
    pids.set(registry, pid);
  }
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime and stime (stat fields 14, 15), clock ticks
  } catch {
    return 0;
  }
}
