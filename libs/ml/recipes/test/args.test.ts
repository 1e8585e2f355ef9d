import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { numberArg, numberListArg } from '../bin/args.js';

describe('numberArg', () => {
  it('reads numbers and integers', () => {
    expect(numberArg('lr', '5e-5')).toBe(5e-5);
    expect(numberArg('temperature', ' 0.8 ', { min: 0 })).toBe(0.8);
    expect(numberArg('seed', '-3', { integer: true })).toBe(-3);
    expect(numberArg('k', '16', { integer: true, min: 1 })).toBe(16);
  });

  it('refuses an empty value instead of reading it as 0', () => {
    expect(() => numberArg('k', '', { integer: true, min: 1 })).toThrow('--k must be an integer >= 1, got ""');
    expect(() => numberArg('lr', ' ')).toThrow('--lr must be a number, got " "');
  });

  it('refuses integers written other than as digits, past the safe range, or below the minimum', () => {
    for (const value of ['1e3', '0x10', '2.0', '2.5', 'ten', String(2 ** 53)]) {
      expect(() => numberArg('size', value, { integer: true })).toThrow(`--size must be an integer, got ${JSON.stringify(value)}`);
    }
    expect(() => numberArg('epochs', '0', { integer: true, min: 1 })).toThrow('--epochs must be an integer >= 1, got "0"');
    expect(() => numberArg('temperature', '-0.1', { min: 0 })).toThrow('--temperature must be a number >= 0, got "-0.1"');
    expect(() => numberArg('lr', 'Infinity')).toThrow('--lr must be a number, got "Infinity"');
  });
});

describe('numberListArg', () => {
  it('reads each entry and quotes the whole list when one is wrong', () => {
    expect(numberListArg('temperature', '1.0,0.7', { min: 0 })).toEqual([1, 0.7]);
    expect(numberListArg('orders', '3', { integer: true })).toEqual([3]);
    expect(() => numberListArg('orders', '1,,2', { integer: true })).toThrow('--orders takes comma-separated integers, got "1,,2"');
    expect(() => numberListArg('temperature', '1.0,-1', { min: 0 })).toThrow('--temperature takes comma-separated numbers >= 0, got "1.0,-1"');
  });
});

describe('the recipe bins', () => {
  /** Runs a bin as `npm run <bin>` does, from a folder with no checkpoints in it. */
  const run = (bin: string, args: string[]) =>
    spawnSync(process.execPath, ['--conditions=@mstar/source', '--import', 'tsx', fileURLToPath(new URL(`../bin/${bin}.ts`, import.meta.url)), ...args], { encoding: 'utf8' });

  it('refuse a bad number before loading anything', () => {
    // The checkpoint folder does not exist: the error must be the option's, so it is checked first.
    const evalRun = run('eval', ['--checkpoint', 'no-such-checkpoint', '--k=']);
    expect(evalRun.status).not.toBe(0);
    expect(evalRun.stderr).toContain('--k must be an integer >= 1, got ""');
    const retrainRun = run('retrain', ['--checkpoint', 'no-such-checkpoint', '--dataset', 'no-such.jsonl', '--orders', '1,,2']);
    expect(retrainRun.status).not.toBe(0);
    expect(retrainRun.stderr).toContain('--orders takes comma-separated integers, got "1,,2"');
    const both = run('retrain', ['--checkpoint', 'no-such-checkpoint', '--dataset', 'no-such.jsonl', '--gold-prompts', '0-9']);
    expect(both.stderr).toContain('give either --dataset FILE');
    const backwards = run('retrain', ['--checkpoint', 'no-such-checkpoint', '--gold-prompts', '9-0', '--pool-size', '100']);
    expect(backwards.stderr).toContain('--gold-prompts takes FROM-TO, pool indices with FROM <= TO < --pool-size (100), got 9-0');
    const cotWithDataset = run('retrain', ['--checkpoint', 'no-such-checkpoint', '--dataset', 'no-such.jsonl', '--cot', 'tally']);
    expect(cotWithDataset.stderr).toContain('--cot picks the chain style of --gold-prompts; a --dataset brings its own responses');
    const warmupRun = run('warmup', ['--schedule', 'cosin', '--out', 'never-written']);
    expect(warmupRun.stderr).toContain('--schedule must be cosine or constant, got cosin');
    for (const range of ['0-100', '5', 'a-b']) {
      const wrong = run('retrain', ['--checkpoint', 'no-such-checkpoint', '--gold-prompts', range, '--pool-size', '100']);
      expect(wrong.stderr).toContain(`--gold-prompts takes FROM-TO, pool indices with FROM <= TO < --pool-size (100), got ${range}`);
    }
  }, 300_000); // nine processes, each starting tsx: a few seconds alone, far more on a loaded 2-core machine
});
