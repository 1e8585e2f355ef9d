import { NotFoundError, UnavailableError } from '@mstar/errors';
import { createLogger } from '@mstar/telemetry';
import { expect, test } from 'vitest';
import { createModelRegistry, type ModelLoader, type ModelRef } from '../src/registry.js';

interface Fake {
  readonly ref: ModelRef;
}

/** A loader that records loads and unloads without touching ONNX Runtime. */
function fakeLoader(): ModelLoader<Fake> & { loads: number[]; unloads: number[] } {
  const loads: number[] = [];
  const unloads: number[] = [];
  return {
    loads,
    unloads,
    load(ref) {
      loads.push(ref.version);
      return Promise.resolve({
        model: { ref },
        unload: () => {
          unloads.push(ref.version);
          return Promise.resolve();
        },
      });
    },
  };
}

const logger = createLogger({ service: 'registry-test', level: 'silent' });
const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

test('serves the newest version, keeps `retain` versions, and unloads an old one only after its last lease', async () => {
  const loader = fakeLoader();
  let changes = 0;
  const registry = createModelRegistry({ loader, retain: 2, logger, label: 'PRM', onChange: () => changes++ });
  expect(() => registry.acquire()).toThrow(UnavailableError);

  await registry.load({ runId: 'r', version: 0 }, 'p0');
  const pinned0 = registry.acquire(0);
  await registry.load({ runId: 'r', version: 1 }, 'p1');
  expect(registry.current()?.ref.version).toBe(1);
  expect(registry.versions()).toEqual([1, 0]);

  // Loading a loaded version again is a no-op, also when asked twice at once.
  await Promise.all([registry.load({ runId: 'r', version: 1 }, 'p1'), registry.load({ runId: 'r', version: 1 }, 'p1')]);
  expect(loader.loads).toEqual([0, 1]);

  await registry.load({ runId: 'r', version: 2 }, 'p2');
  expect(registry.versions()).toEqual([2, 1]);
  expect(() => registry.acquire(0)).toThrow(NotFoundError);
  expect(() => registry.acquire(0)).toThrow('PRM version 0 is not loaded; loaded versions: 2, 1');
  await flush();
  expect(loader.unloads).toEqual([]);
  pinned0.release();
  pinned0.release();
  await flush();
  expect(loader.unloads).toEqual([0]);
  expect(changes).toBe(3);

  const lease = registry.acquire();
  expect(lease.model.ref.version).toBe(2);
  lease.release();
  await registry.close();
  expect(loader.unloads.sort()).toEqual([0, 1, 2]);
});

test('a failed load leaves the registry as it was and can be retried', async () => {
  const loader = fakeLoader();
  let fail = true;
  const flaky: ModelLoader<Fake> = {
    load: (ref, prefix) => (fail ? Promise.reject(new Error('store unreachable')) : loader.load(ref, prefix)),
  };
  const registry = createModelRegistry({ loader: flaky, retain: 1, logger, label: 'PRM' });
  await expect(registry.load({ runId: 'r', version: 0 }, 'p0')).rejects.toThrow('store unreachable');
  expect(registry.versions()).toEqual([]);
  fail = false;
  await registry.load({ runId: 'r', version: 0 }, 'p0');
  expect(registry.versions()).toEqual([0]);
  await registry.close();
});
