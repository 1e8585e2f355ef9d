import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TINY_CONFIG } from '@mstar/models';
import { DatasetError, createWorldTokenizer, encodePng, generateSplit, goldCot, renderScene, writeDataset } from '@mstar/world';
import { itemFromProblem, loadItems, sftExamples, sftFeeds } from '../src/index.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mstar-recipes-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A w x h RGB image: left half red, right half blue. */
function halves(w: number, h: number): Buffer {
  const data = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data.set(x < w / 2 ? [230, 20, 20] : [20, 20, 230], (y * w + x) * 3);
  return data;
}

describe('MathV360K-style datasets', () => {
  it('loads JPEG images through the sharp decoder, resized to the model size, with numeric answers', async () => {
    const root = join(dir, 'mathv');
    await mkdir(join(root, 'images', 'geo'), { recursive: true });
    await sharp(halves(64, 48), { raw: { width: 64, height: 48, channels: 3 } }).jpeg({ quality: 95 }).toFile(join(root, 'images', 'geo', 'q1.jpg'));
    await sharp(halves(32, 32), { raw: { width: 32, height: 32, channels: 3 } }).jpeg({ quality: 95 }).toFile(join(root, 'images', 'geo', 'q2.JPEG'));
    const lines = [
      { id: 'q1', image: 'geo/q1.jpg', conversations: [{ from: 'human', value: '<image>\nWhat is 3 + 4?' }, { from: 'gpt', value: '3 + 4 = 7.\n\n# Answer\n\n7' }], answer: 7 },
      { id: 'q2', image: 'geo/q2.JPEG', conversations: [{ from: 'human', value: 'Which colour is left? <image>' }, { from: 'gpt', value: 'red.\n\n# Answer\n\nA' }], answer: 'A', choices: ['red', 'blue'] },
    ];
    await writeFile(join(root, 'train.jsonl'), lines.map((l) => JSON.stringify(l)).join('\n'));
    const items = await loadItems(join(root, 'train.jsonl'), { config: TINY_CONFIG, imageRoot: join(root, 'images') });
    expect(items.map((i) => [i.id, i.family, i.question, i.answer, i.image.width, i.image.height])).toEqual([
      ['q1', 'unknown', 'What is 3 + 4?', '7', 32, 32],
      ['q2', 'unknown', 'Which colour is left?', 'A', 32, 32],
    ]);
    expect(items[1]!.choices).toEqual(['red', 'blue']);
    for (const item of items) {
      const px = (x: number, y: number): number[] => Array.from(item.image.data.subarray((y * 32 + x) * 3, (y * 32 + x) * 3 + 3));
      // JPEG is lossy: far from the colour edge the halves keep their colour within a few levels.
      for (const [got, want] of [
        [px(4, 16), [230, 20, 20]],
        [px(28, 16), [20, 20, 230]],
      ] as const) {
        got.forEach((v, c) => expect(Math.abs(v - want[c]!)).toBeLessThan(12));
      }
    }
    // They feed SFT like world items.
    const tokenizer = createWorldTokenizer();
    const feeds = sftFeeds(sftExamples(items, tokenizer, TINY_CONFIG), TINY_CONFIG);
    expect(feeds.pixel_values!.dims).toEqual([2, 3, 32, 32]);
  });

  it('reads world datasets back to the same items, and reports an undecodable JPEG with its line', async () => {
    const problems = generateSplit('validation', { seed: 3, size: 3 });
    const path = await writeDataset(join(dir, 'world'), problems);
    const items = await loadItems(path, { config: TINY_CONFIG });
    expect(items).toEqual(problems.map((p) => itemFromProblem(p)));
    // The chain style changes only the gold response.
    const tallied = problems.map((p) => itemFromProblem(p, { cot: 'tally' }));
    expect(tallied.map(({ response: _r, ...rest }) => rest)).toEqual(items.map(({ response: _r, ...rest }) => rest));
    expect(tallied.map((i) => i.response)).toEqual(problems.map((p) => goldCot(p, 'tally')));
    expect(tallied.some((i, k) => i.response !== items[k]!.response)).toBe(true);
    expect(Buffer.from(items[0]!.image.data).equals(Buffer.from(renderScene(problems[0]!.scene, 'plain').data))).toBe(true);

    const bad = join(dir, 'bad');
    await mkdir(bad, { recursive: true });
    await writeFile(join(bad, 'x.jpg'), encodePng(renderScene(problems[0]!.scene, 'plain')).subarray(0, 20));
    await writeFile(join(bad, 'data.jsonl'), JSON.stringify({ id: 'x', image: 'x.jpg', conversations: [{ from: 'human', value: '<image>\nq' }, { from: 'gpt', value: 'a' }], answer: '1' }));
    const error = await loadItems(join(bad, 'data.jsonl'), { config: TINY_CONFIG }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatasetError);
    expect((error as DatasetError).message).toMatch(/data\.jsonl:1: .*x\.jpg/);
  });
});
