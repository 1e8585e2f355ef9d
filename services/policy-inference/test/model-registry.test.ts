import { NotFoundError, UnavailableError } from '@mstar/errors';
import { TINY_CONFIG } from '@mstar/models';
import { createWorldTokenizer } from '@mstar/world';
import { expect, test } from 'vitest';
import { createModelRegistry, type LoadedPolicy, type PolicyLoader } from '../src/index.js';
import { silentLogger } from './fixture.js';

/** A loader that records loads and unloads without touching ONNX Runtime. */
function fakeLoader(): PolicyLoader & { loads: number[]; unloads: number[] } {
  const loads: number[] = [];
  const unloads: number[] = [];
  const tokenizer = createWorldTokenizer();
  return {
    loads,
    unloads,
    load(ref) {
      loads.push(ref.version);
      const policy: LoadedPolicy = {
        ref,
        config: TINY_CONFIG,
        tokenizer,
        runner: { layout: { layers: 2, kvHeads: 2, headDim: 8, hidden: 32 }, run: () => Promise.reject(new Error('not used')) },
        executionProvider: 'cpu',
        loadedAt: new Date(0),
      };
      return Promise.resolve({
        policy,
        unload: () => {
          unloads.push(ref.version);
          return Promise.resolve();
        },
      });
    },
  };
}

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

test('serves the newest version, keeps `retain` versions, and unloads an old one only after its last lease', async () => {
  const loader = fakeLoader();
  let changes = 0;
  const registry = createModelRegistry({ loader, retain: 2, logger: silentLogger, onChange: () => changes++ });
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
  await flush();
  expect(loader.unloads).toEqual([]);
  pinned0.release();
  pinned0.release();
  await flush();
  expect(loader.unloads).toEqual([0]);
  expect(changes).toBe(3);

  const lease = registry.acquire();
  expect(lease.policy.ref.version).toBe(2);
  lease.release();
  await registry.close();
  expect(loader.unloads.sort()).toEqual([0, 1, 2]);
});
