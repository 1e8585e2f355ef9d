import { commonV1, curationV1, runV1 } from '@mstar/contracts';
import { generateSplit, goldCot } from '@mstar/world';
import { InvalidArgumentError } from '@mstar/errors';
import { paramCount, REFERENCE_CONFIG, TINY_CONFIG } from '@mstar/models';
import { describe, expect, it } from 'vitest';
import { decodeDatasetRecords, decodePrmData, encodeDatasetRecords, encodePrmData, modelConfigOf, modelSummary, runItems } from '../src/index.js';

const world = { poolSize: 12, validationSize: 5, inDomainTestSize: 6, outOfDomainTestSize: 4, worldSeed: 3, chainStyle: runV1.ChainStyle.UNSPECIFIED, answerStyle: runV1.AnswerStyle.UNSPECIFIED };

describe('run items', () => {
  it('are a pure function of the world settings, with distinct ids per split', () => {
    const pool = runItems(world, 'pool');
    expect(pool).toHaveLength(12);
    expect(runItems(world, 'pool').map((i) => i.id)).toEqual(pool.map((i) => i.id));
    expect(runItems({ ...world, poolSize: 5 }, 'pool').map((i) => i.id)).toEqual(pool.slice(0, 5).map((i) => i.id));
    expect(runItems(world, 'validation')).toHaveLength(5);
    expect(runItems(world, 'test')).toHaveLength(6);
    expect(runItems(world, 'test-ood-style')).toHaveLength(4);
    const ids = ['pool', 'validation', 'test', 'test-ood-compose', 'test-ood-style'].flatMap((s) => runItems(world, s as 'pool').map((i) => i.id));
    expect(new Set(ids).size).toBe(ids.length);
    expect(pool.every((i) => i.response !== undefined && i.answer !== '')).toBe(true);
  });

  it('write the gold chains in the world\'s chain style', () => {
    const plain = runItems(world, 'pool');
    expect(runItems({ ...world, chainStyle: runV1.ChainStyle.PLAIN }, 'pool')).toEqual(plain);
    const tally = runItems({ ...world, chainStyle: runV1.ChainStyle.TALLY }, 'pool');
    expect(tally.map(({ response: _r, ...rest }) => rest)).toEqual(plain.map(({ response: _r, ...rest }) => rest));
    expect(tally.map((i) => i.response)).toEqual(generateSplit('train', { seed: 3, size: 12 }).map((p) => goldCot(p, 'tally')));
    expect(tally.filter((i, k) => i.response !== plain[k]!.response).length).toBeGreaterThan(6);
  });

  it('give the answers in the world\'s answer style, on the same prompts', () => {
    const short = runItems(world, 'test');
    expect(runItems({ ...world, answerStyle: runV1.AnswerStyle.SHORT }, 'test')).toEqual(short);
    const worked = runItems({ ...world, answerStyle: runV1.AnswerStyle.WORKED, chainStyle: runV1.ChainStyle.TALLY }, 'test');
    const gold = generateSplit('test', { seed: 3, size: 6, answers: 'worked' });
    expect(worked.map((i) => [i.id, i.question, i.answer, i.response])).toEqual(gold.map((p) => [p.id, p.question, p.answer, goldCot(p, 'tally')]));
    expect(worked.map((i) => i.id)).toEqual(short.map((i) => i.id));
    expect(worked.every((i) => i.choices === undefined && i.response!.endsWith(`# Answer\n\n${i.answer}`))).toBe(true);
    expect(worked.filter((i, k) => i.answer !== short[k]!.answer).length).toBeGreaterThan(2);
  });

  it('maps presets to model configs', () => {
    expect(modelConfigOf(commonV1.ModelPreset.REFERENCE)).toBe(REFERENCE_CONFIG);
    expect(modelConfigOf(commonV1.ModelPreset.TINY)).toBe(TINY_CONFIG);
    expect(() => modelConfigOf(commonV1.ModelPreset.UNSPECIFIED)).toThrow(InvalidArgumentError);
  });

  it('summarises a model config back to its preset and shape', () => {
    const policy = modelSummary(REFERENCE_CONFIG, 'policy');
    expect(policy.preset).toBe(commonV1.ModelPreset.REFERENCE);
    expect(policy.parameterCount).toBe(paramCount(REFERENCE_CONFIG, 'policy'));
    expect(modelSummary(REFERENCE_CONFIG, 'prm').parameterCount).toBe(paramCount(REFERENCE_CONFIG, 'prm'));
    expect(modelSummary(TINY_CONFIG, 'policy')).toMatchObject({ preset: commonV1.ModelPreset.TINY, hiddenSize: TINY_CONFIG.text.hiddenSize, numLayers: TINY_CONFIG.text.layers });
    const custom = { ...TINY_CONFIG, text: { ...TINY_CONFIG.text, layers: TINY_CONFIG.text.layers + 1 } };
    expect(modelSummary(custom, 'policy')).toMatchObject({ preset: commonV1.ModelPreset.UNSPECIFIED, numLayers: TINY_CONFIG.text.layers + 1 });
  });
});

describe('artifact formats', () => {
  it('round-trips PRM trajectories and names the bad line', () => {
    const data = [
      { promptId: 'a', response: 's1\n\ns2\n\n# Answer\n\n3', stepLabels: [0.5, 1], correct: true },
      { promptId: 'b', response: 's1\n\n# Answer\n\n1', stepLabels: [0], correct: false },
    ];
    expect(decodePrmData(encodePrmData(data))).toEqual(data);
    const bad = new TextEncoder().encode('{"prompt_id":"a","response":"x","step_labels":[2],"correct":true}\n');
    expect(() => decodePrmData(bad, 'prm.jsonl')).toThrow(/prm\.jsonl:1: step_labels/);
    expect(() => decodePrmData(new TextEncoder().encode('\n{oops'), 'prm.jsonl')).toThrow(/prm\.jsonl:2: not JSON/);
  });

  it('round-trips dataset records as proto JSON', () => {
    const records = [
      curationV1.DatasetRecord.fromPartial({ promptId: 'a', response: 'r', prmScore: 0.25, temperature: 0.8, sampleIndex: 3, policy: { runId: 'x', kind: 1, version: 2 } }),
    ];
    expect(decodeDatasetRecords(encodeDatasetRecords(records))).toEqual(records);
    expect(() => decodeDatasetRecords(new TextEncoder().encode('{"promptId":"a"}\n'), 'd.jsonl')).toThrow(/d\.jsonl:1/);
  });
});
