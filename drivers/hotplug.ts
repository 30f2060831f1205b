/**
 * Hotplug: neither node-hid nor serialport reports arrival or removal. This watches the device folders
 * (fs.watch on /dev and on the folders of configured paths, for a fast reaction) and polls a cheap
 * signature of /sys/class/{tty,hidraw} and the configured paths (sysfs does not raise inotify events),
 * calling `onChange` when something may have been plugged or unplugged. A plugged scanner is seen
 * within one poll interval (default 500 ms) even when no inotify event comes.
 */
import { watch, existsSync, type FSWatcher } from 'node:fs';
import path from 'node:path';

export interface DeviceWatcher {
  close(): void;
}

export function watchDevices(options: {
  dirs: string[];
  pollMs: number;
  signature: () => string;
  onChange: () => void;
  debounceMs?: number;
}): DeviceWatcher {
  const watchers = new Map<string, FSWatcher>();
  let last = options.signature();
  let debounce: NodeJS.Timeout | undefined;
  let closed = false;
  const fire = () => {
    if (closed || debounce) return;
    debounce = setTimeout(() => {
      debounce = undefined;
      if (closed) return;
      last = options.signature();
      options.onChange();
    }, options.debounceMs ?? 20);
  };
  const ensureWatchers = () => {
    for (const dir of options.dirs) {
      if (watchers.has(dir) || !existsSync(dir)) continue;
      try {
        const w = watch(dir, { persistent: false }, () => fire());
        w.on('error', () => {
          w.close();
          watchers.delete(dir); // folder removed: re-armed by the poll when it is back
        });
        watchers.set(dir, w);
      } catch {
        // not watchable (permissions, sysfs): the poll covers it
      }
    }
  };
  ensureWatchers();
  const timer = setInterval(() => {
    ensureWatchers();
    const now = options.signature();
    if (now !== last) {
      last = now;
      options.onChange();
    }
  }, options.pollMs);
  timer.unref();
  return {
    close() {
      closed = true;
      clearInterval(timer);
      if (debounce) clearTimeout(debounce);
      for (const w of watchers.values()) w.close();
      watchers.clear();
    },
  };
}

/** Folders worth an inotify watch for these configured paths (plus /dev for autodetect). */
export function watchDirsFor(paths: string[], autoDetect: boolean): string[] {
  const dirs = new Set<string>();
  if (autoDetect) {
    dirs.add('/dev');
    dirs.add('/dev/serial/by-path');
    dirs.add('/dev/serial/by-id');
  }
  for (const p of paths) dirs.add(path.dirname(p));
  return [...dirs];
}
