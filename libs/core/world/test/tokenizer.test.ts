import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  SPLIT_NAMES,
  TokenizerError,
  buildWorldTokenizer,
  createTokenizer,
  createWorldTokenizer,
  generateSplit,
  readTokenizerFiles,
  writeTokenizerFiles,
} from '../src/index.js';

const tokenizer = createWorldTokenizer();
// The pre-tokenizer's rule: a blank line, a newline, or a word/number/mark with its leading space.
const PRE_TOKENS = /\n\n|\n| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]|\s/g;

describe('world tokenizer', () => {
  it('has a small vocabulary with the specials first', () => {
    expect(tokenizer.vocabSize).toBe(380);
    expect(tokenizer.specialIds).toEqual({ pad: 0, bos: 1, eos: 2, unk: 3, image: 4 });
    expect(tokenizer.decode([tokenizer.stepSeparatorId])).toBe('\n\n');
  });

  it('round-trips every question and gold CoT exactly, one token per word', () => {
    const sizes = { train: 2000, validation: 100, test: 200, 'test-ood-compose': 400, 'test-ood-style': 100 } as const;
    const problems = SPLIT_NAMES.flatMap((name) => generateSplit(name, { seed: 21, size: sizes[name] }));
    expect(problems.length).toBe(2800);
    const failures: string[] = [];
    for (const p of problems) {
      const prompt = `<image>\n${p.question}`;
      const promptIds = tokenizer.encode(prompt);
      const ids = tokenizer.encode(p.cot);
      const ok =
        tokenizer.decode(promptIds) === prompt &&
        promptIds[0] === tokenizer.specialIds.image &&
        promptIds.length === 1 + (`\n${p.question}`.match(PRE_TOKENS) ?? []).length &&
        tokenizer.decode(ids) === p.cot &&
        ids.length === (p.cot.match(PRE_TOKENS) ?? []).length &&
        !ids.includes(tokenizer.specialIds.unk) &&
        // k steps, then "# Answer", then the answer: k + 1 blank lines, each one token.
        ids.filter((id) => id === tokenizer.stepSeparatorId).length === p.steps.length + 1;
      if (!ok) failures.push(p.id);
    }
    expect(failures).toEqual([]);
  });

  it('still round-trips ASCII text outside the templates, character by character', () => {
    const text = 'Hello, World! 123 ~ {x}\n\n\tok';
    expect(tokenizer.decode(tokenizer.encode(text))).toBe(text);
    expect(tokenizer.encode('é')).toEqual([tokenizer.specialIds.unk, tokenizer.specialIds.unk]);
  });

  it('writes special tokens on decode unless asked to skip them', () => {
    const ids = [tokenizer.specialIds.bos, ...tokenizer.encode('3 + 4 = 7.'), tokenizer.specialIds.eos];
    expect(tokenizer.decode(ids)).toBe('<s>3 + 4 = 7.</s>');
    expect(tokenizer.decode(ids, { skipSpecialTokens: true })).toBe('3 + 4 = 7.');
    expect(tokenizer.decode([])).toBe('');
    expect(() => tokenizer.decode([tokenizer.vocabSize])).toThrow(TokenizerError);
    expect(tokenizer.tokenize('the number of red circles is 12.')).toEqual(['the', 'Ġnumber', 'Ġof', 'Ġred', 'Ġcircles', 'Ġis', 'Ġ12', '.']);
  });

  it('saves and reloads tokenizer.json + tokenizer_config.json', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mstar-tok-'));
    try {
      await writeTokenizerFiles(dir, buildWorldTokenizer());
      const reloaded = createTokenizer(await readTokenizerFiles(dir));
      const text = 'the red digits are 3, 5 and 1.\n\n3 + 5 = 8.\n\n8 + 1 = 9.\n\n# Answer\n\n9';
      expect(reloaded.encode(text)).toEqual(tokenizer.encode(text));
      expect(reloaded.vocabSize).toBe(tokenizer.vocabSize);
      await expect(readTokenizerFiles(join(dir, 'nope'))).rejects.toThrow(TokenizerError);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('rejects a tokenizer without the specials or a one-token step boundary', () => {
    const files = buildWorldTokenizer();
    const model = files.tokenizerJson.model as { vocab: Record<string, number> };
    const noBoundary = structuredClone(files);
    delete (noBoundary.tokenizerJson.model as { vocab: Record<string, number> }).vocab['ĊĊ'];
    expect(() => createTokenizer(noBoundary)).toThrow('step boundary');
    expect(model.vocab['ĊĊ']).toBe(5);
    const noImage = structuredClone(files);
    noImage.tokenizerJson.added_tokens = (noImage.tokenizerJson.added_tokens as { content: string }[]).filter((t) => t.content !== '<image>');
    delete (noImage.tokenizerJson.model as { vocab: Record<string, number> }).vocab['<image>'];
    expect(() => createTokenizer(noImage)).toThrow('no special token <image>');
  });
});
