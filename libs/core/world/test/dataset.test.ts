import { mkdtemp, readFile, readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DatasetError,
  checkResponse,
  checkableFromRecord,
  decoderByExtension,
  encodePng,
  generateSplit,
  loadDataset,
  pngDecoder,
  renderScene,
  toDatasetLine,
  writeDataset,
} from '../src/index.js';
import type { ImageDecoder } from '../src/index.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'mstar-world-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const problems = [...generateSplit('validation', { seed: 3, size: 12 }), ...generateSplit('test-ood-style', { seed: 3, size: 4 })];

async function snapshot(dir: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  files.set('data.jsonl', await readFile(join(dir, 'data.jsonl')));
  for (const name of await readdir(join(dir, 'images'))) files.set(name, await readFile(join(dir, 'images', name)));
  return files;
}

describe('writeDataset + loadDataset', () => {
  it('writes the LLaVA conversation format', async () => {
    const dir = join(root, 'format');
    const path = await writeDataset(dir, problems.slice(0, 1));
    const [line] = (await readFile(path, 'utf8')).trim().split('\n');
    const json = JSON.parse(line ?? '') as Record<string, unknown>;
    const p = problems[0];
    expect(json).toMatchObject({
      id: p?.id,
      image: `images/${p?.id}.png`,
      conversations: [
        { from: 'human', value: `<image>\n${p?.question}` },
        { from: 'gpt', value: p?.cot },
      ],
      answer: p?.answer,
      meta: { family: p?.family, difficulty: p?.difficulty, seed: p?.seed, style: p?.style },
    });
    expect(toDatasetLine(p ?? problems[1]!).image).toBe(`images/${p?.id}.png`);
  });

  it('round-trips problems, pixels and checker ground truth', async () => {
    const dir = join(root, 'roundtrip');
    const path = await writeDataset(dir, problems);
    const records = await loadDataset(path);
    expect(records).toHaveLength(problems.length);
    for (const [i, r] of records.entries()) {
      const p = problems[i]!;
      expect(r).toMatchObject({ id: p.id, line: i + 1, question: p.question, response: p.cot, answer: p.answer });
      expect(r.choices).toEqual(p.choices);
      expect(r.image?.data).toEqual(renderScene(p.scene, p.style).data);
      const check = checkResponse(checkableFromRecord(r), r.response);
      expect(check.allStepsCorrect && check.answerCorrect).toBe(true);
    }
    const lazy = await loadDataset(path, { loadImages: false });
    expect(lazy[0]?.image).toBeUndefined();
  });

  it('writes identical bytes for the same seed', async () => {
    await writeDataset(join(root, 'a'), generateSplit('test', { seed: 9, size: 8 }));
    await writeDataset(join(root, 'b'), generateSplit('test', { seed: 9, size: 8 }));
    expect(await snapshot(join(root, 'b'))).toEqual(await snapshot(join(root, 'a')));
  });
});

describe('loadDataset errors', () => {
  it('names file and line for every bad line', async () => {
    const dir = join(root, 'bad');
    await mkdir(join(dir, 'images'), { recursive: true });
    await writeFile(join(dir, 'images', 'ok.png'), encodePng(renderScene({ objects: [] }, 'plain')));
    const good = (id: string, extra: Record<string, unknown> = {}): string =>
      JSON.stringify({
        id,
        image: 'images/ok.png',
        conversations: [
          { from: 'human', value: '<image>\nhow many shapes are there?' },
          { from: 'gpt', value: '# Answer\n\n0' },
        ],
        answer: '0',
        ...extra,
      });
    const lines = [
      good('a'),
      '{"id": "b", ',
      JSON.stringify({ id: 'c', image: 'images/ok.png', conversations: [] }),
      good('d', { conversations: [{ from: 'human', value: 'no image here' }, { from: 'gpt', value: 'x' }] }),
      good('e', { image: 'images/missing.png' }),
      '',
      good('a'),
      '[1, 2]',
      good('f', { answer: 7 }),
    ];
    const path = join(dir, 'data.jsonl');
    await writeFile(path, `${lines.join('\n')}\n`);
    const error = await loadDataset(path).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DatasetError);
    const issues = (error as DatasetError).issues;
    expect(issues.map((i) => i.line)).toEqual([2, 3, 4, 5, 7, 8]);
    expect(issues.every((i) => i.file === path)).toBe(true);
    const message = (error as DatasetError).message;
    expect(message).toContain(`${path}:2: invalid JSON`);
    expect(message).toContain(`${path}:3: missing field(s) "answer"`);
    expect(message).toContain(`${path}:4: the human turn has no <image> placeholder`);
    expect(message).toContain(`${path}:5: image file images/missing.png not found`);
    expect(message).toContain(`${path}:7: duplicate id "a" (first on line 1)`);
    expect(message).toContain(`${path}:8: expected a JSON object`);
  });

  it('fails on an unknown image type unless a decoder is plugged in', async () => {
    const dir = join(root, 'jpeg');
    await mkdir(join(dir, 'img'), { recursive: true });
    await writeFile(join(dir, 'img', 'x.jpg'), Buffer.from([0xff, 0xd8, 0xff]));
    const line = JSON.stringify({
      id: 'x',
      image: 'x.jpg',
      conversations: [
        { from: 'human', value: '<image>\nwhat is shown?' },
        { from: 'gpt', value: 'a cat' },
      ],
      answer: 42,
    });
    const path = join(dir, 'mathv.jsonl');
    await writeFile(path, `${line}\n`);
    await expect(loadDataset(path, { imageRoot: join(dir, 'img') })).rejects.toThrow(`${path}:1:`);
    await expect(loadDataset(path, { imageRoot: join(dir, 'img') })).rejects.toThrow('no image decoder for ".jpg"');
    const fakeJpeg: ImageDecoder = (bytes) => ({ width: 1, height: 1, data: new Uint8Array([bytes[0] ?? 0, 0, 0]) });
    const [record] = await loadDataset(path, { imageRoot: join(dir, 'img'), decoder: decoderByExtension({ '.png': pngDecoder, '.jpg': fakeJpeg }) });
    expect(record?.image?.data).toEqual(new Uint8Array([0xff, 0, 0]));
    expect(record?.answer).toBe('42');
    expect(record?.question).toBe('what is shown?');
    expect(() => checkableFromRecord(record!)).toThrow('no valid meta.scene');
  });

  it('reports an undecodable PNG and a missing file', async () => {
    const dir = join(root, 'corrupt');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'bad.png'), 'not a png');
    const path = join(dir, 'data.jsonl');
    await writeFile(
      path,
      `${JSON.stringify({ id: 'x', image: 'bad.png', conversations: [{ from: 'human', value: '<image>' }, { from: 'gpt', value: '' }], answer: '1' })}\n`,
    );
    await expect(loadDataset(path)).rejects.toThrow(/data\.jsonl:1: .*bad\.png: not a valid PNG/);
    await expect(loadDataset(join(dir, 'absent.jsonl'))).rejects.toThrow(DatasetError);
  });
});
