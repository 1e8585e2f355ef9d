import { type commonV1, type curationV1, type policyV1, runV1 } from '@mstar/contracts';
import { splitSteps, withAnswerHint } from '@mstar/cot';
import { InvalidArgumentError, UnavailableError } from '@mstar/errors';
import { createRng, deriveSeed, selectAllCorrect, selectRandomK, selectThreshold, selectTopK } from '@mstar/metrics';
import type { PrmClient } from '@mstar/prm-scoring';
import { isCorrect, type EvalItem } from '@mstar/recipes';
import type { ResolvedRunSpec } from '@mstar/runspec';
import { checkResponse, isConsistentChain } from '@mstar/world';
import { promptOf } from './pool.js';
import { CALLS_IN_FLIGHT, chunks, mapInOrder, sample, type PolicyApi } from './sampling.js';

/** What curation needs of prm-scoring. */
export type PrmApi = Pick<PrmClient, 'scoreSteps' | 'waitForVersion'>;

/** Responses per ScoreSteps call; well under the service's default limit of 1024 targets. */
export const SCORE_TARGETS_PER_CALL = 256;

/** One sampled answer of a prompt, as the selection rules see it. */
export interface SampleCandidate {
  readonly sampleIndex: number;
  readonly text: string;
  /** Verified: the final answer matched the gold answer and the chain passed the run's chain check. */
  readonly correct: boolean;
  /** The aggregated PRM score; 0 when not scored (or the answer has no step to score). */
  readonly score: number;
  /** Sampled with the question hinted by the gold answer (selection.rationalize). */
  readonly hinted?: boolean;
}

/** True when the rule ranks by PRM score, so the correct samples must be scored. */
export function needsScores(rule: runV1.SelectionRule): boolean {
  return rule === runV1.SelectionRule.PRM_TOP_K || rule === runV1.SelectionRule.PRM_THRESHOLD;
}

/**
 * Whether a matched sample's chain passes `selection.chain_check`: any chain with no check; under
 * CONSISTENT one that @mstar/world's isConsistentChain accepts (question and response only); under
 * the IMAGE control one whose every step the world's checker finds true of the item's scene.
 */
export function passesChainCheck(check: runV1.ChainCheck, item: EvalItem, text: string): boolean {
  switch (check) {
    case runV1.ChainCheck.UNSPECIFIED:
      return true;
    case runV1.ChainCheck.CONSISTENT:
      return isConsistentChain(item.question, text);
    case runV1.ChainCheck.IMAGE:
      if (item.scene === undefined) throw new InvalidArgumentError(`selection.chain_check: IMAGE needs the image's ground truth, which prompt ${item.id} has not`, { field: 'selection.chain_check' });
      return checkResponse({ scene: item.scene, question: item.question, answer: item.answer, ...(item.choices !== undefined ? { choices: item.choices } : {}) }, text).allStepsCorrect;
    default:
      // validateRunSpec rejects every other value before a stage starts.
      throw new Error(`unknown chain check ${String(check)}`);
  }
}

/**
 * The kept samples of one prompt under the spec's selection rule (@mstar/metrics), ordered by
 * sample index. RANDOM_K draws from its own stream deriveSeed(seed, 'selection', iteration,
 * prompt id), so a prompt's draw does not depend on the other prompts.
 */
export function selectSamples(spec: ResolvedRunSpec, iteration: number, promptId: string, candidates: readonly SampleCandidate[]): SampleCandidate[] {
  const { rule, k, alpha } = spec.selection;
  let kept: SampleCandidate[];
  switch (rule) {
    case runV1.SelectionRule.ALL_CORRECT:
      kept = selectAllCorrect(candidates);
      break;
    case runV1.SelectionRule.RANDOM_K:
      kept = selectRandomK(candidates, k, createRng(deriveSeed(spec.seed, 'selection', iteration, promptId)));
      break;
    case runV1.SelectionRule.PRM_TOP_K:
      kept = selectTopK(candidates, k);
      break;
    case runV1.SelectionRule.PRM_THRESHOLD:
      kept = selectThreshold(candidates, alpha);
      break;
    default:
      // validateRunSpec rejects every other value before a stage starts.
      throw new Error(`unknown selection rule ${String(rule)}`);
  }
  return kept.sort((a, b) => a.sampleIndex - b.sampleIndex);
}

/** Candidates whose text no earlier sample of the prompt has (selection.distinct), in input order. */
export function distinctCandidates(candidates: readonly SampleCandidate[]): SampleCandidate[] {
  const seen = new Set<string>();
  return candidates.filter((c) => !seen.has(c.text) && seen.add(c.text));
}

/** One prompt of a slice as selection.balance_answers sees it. */
export interface PromptSelection {
  readonly item: Pick<EvalItem, 'family' | 'answer'>;
  /** Samples whose final answer matched the gold answer. */
  readonly matched: number;
  /** The greedy answer matched (decoded only under selection.unsolved_only or greedy_first). */
  readonly solved: boolean;
  /** The samples the rule kept. */
  readonly kept: readonly SampleCandidate[];
}

/**
 * The kept samples of each prompt (in input order) after selection.balance_answers: the prompts
 * are grouped by (family, gold answer); a group with n of the N prompts keeps at most
 * ceil(K * n / N) of the K kept samples, keeping first those of the prompts the policy does not
 * answer greedily, then of those with the fewest matched samples, then the highest scores, then
 * prompt and sample order. (Under greedy_first a prompt answered greedily has one candidate, so its
 * matched count alone would rank it among the hardest.)
 */
export function balanceAnswers(prompts: readonly PromptSelection[]): SampleCandidate[][] {
  const total = prompts.reduce((n, p) => n + p.kept.length, 0);
  const groups = new Map<string, number[]>();
  prompts.forEach((p, i) => {
    const key = JSON.stringify([p.item.family, p.item.answer]);
    groups.set(key, [...(groups.get(key) ?? []), i]);
  });
  const dropped = new Set<SampleCandidate>();
  for (const members of groups.values()) {
    const cap = Math.ceil((total * members.length) / prompts.length);
    const samples = members.flatMap((i) => (prompts[i] as PromptSelection).kept.map((candidate) => ({ prompt: i, candidate })));
    if (samples.length <= cap) continue;
    const of = (i: number): PromptSelection => prompts[i] as PromptSelection;
    samples.sort((a, b) => Number(of(a.prompt).solved) - Number(of(b.prompt).solved) || of(a.prompt).matched - of(b.prompt).matched || b.candidate.score - a.candidate.score || a.prompt - b.prompt || a.candidate.sampleIndex - b.candidate.sampleIndex);
    for (const { candidate } of samples.slice(cap)) dropped.add(candidate);
  }
  return prompts.map((p) => p.kept.filter((c) => !dropped.has(c)));
}

/** An iteration's dataset before it is written: the records and the numbers of DatasetStats. */
export interface DatasetResult {
  /** Kept samples in slice order, then sample index. */
  readonly records: curationV1.DatasetRecord[];
  readonly promptsTried: number;
  readonly promptsWithCorrect: number;
  readonly samplesGenerated: number;
  readonly correctSamples: number;
  /** Correct samples that passed the chain check (all correct ones with no check). */
  readonly checkedSamples: number;
  /** Prompts whose greedy answer already matched, under selection.unsolved_only or greedy_first (else 0). */
  readonly promptsSolvedGreedily: number;
  /** Prompts sampled again with a hinted question under selection.rationalize (else 0). */
  readonly promptsRationalized: number;
  readonly keptSamples: number;
  /** Mean score of the kept samples when the rule scored them, else 0. */
  readonly meanPrmScore: number;
}

export interface BuildDatasetOptions {
  readonly policy: PolicyApi;
  readonly prm: PrmApi;
  readonly spec: ResolvedRunSpec;
  readonly iteration: number;
  readonly temperature: number;
  /** The policy sampled, v(iteration - 1), pinned on every call. */
  readonly source: commonV1.CheckpointRef;
  /** The PRM that scores, pinned on every call. */
  readonly prmRef: commonV1.CheckpointRef;
  /** The iteration's pool slice, in slice order. */
  readonly items: readonly EvalItem[];
  readonly promptsPerCall: number;
  readonly signal: AbortSignal;
  /** Prompts finished so far, after each chunk. */
  readonly onProgress?: (done: number) => void;
}

/**
 * Aggregated PRM scores of responses (`[item index, response]` pairs into `items`), in order, in
 * calls of at most SCORE_TARGETS_PER_CALL responses, each call carrying the images it needs once.
 */
async function scoreResponses(
  options: BuildDatasetOptions,
  items: readonly EvalItem[],
  targets: readonly { item: number; response: string }[],
): Promise<number[]> {
  const scores: number[] = [];
  for (const group of chunks(targets, SCORE_TARGETS_PER_CALL)) {
    const used = [...new Set(group.map((t) => t.item))];
    const promptIndex = new Map(used.map((item, i) => [item, i]));
    const answer = await options.prm.scoreSteps(
      {
        prompts: used.map((i) => promptOf(items[i] as EvalItem)),
        targets: group.map((t) => ({ promptIndex: promptIndex.get(t.item) as number, response: t.response })),
        aggregation: options.spec.aggregation,
        prm: options.prmRef,
      },
      { signal: options.signal },
    );
    const byTarget = new Map(answer.scores.map((s) => [s.targetIndex, s.aggregateScore]));
    if (answer.scores.length !== group.length || byTarget.size !== group.length) {
      throw new UnavailableError(`prm-scoring answered ${answer.scores.length} scores for ${group.length} responses`);
    }
    group.forEach((_, i) => {
      const score = byTarget.get(i);
      if (score === undefined || !Number.isFinite(score)) throw new UnavailableError(`prm-scoring answered no finite score for response ${i}`);
      scores.push(score);
    });
  }
  return scores;
}

/**
 * Builds iteration i's dataset (docs/loop.md, step 6): under selection.unsolved_only or
 * greedy_first one greedy answer per slice prompt from the pinned policy, then `samples_per_prompt`
 * samples per prompt (under greedy_first only of the prompts whose greedy answer does not match, a
 * prompt that matches offering its greedy answer alone) at the selected temperature with seed
 * deriveSeed(seed, 'iteration', i); exact-match verification, then the spec's chain check
 * (passesChainCheck) on the matched samples. A prompt whose greedy answer matches offers nothing
 * under selection.unsolved_only. Under PRM_TOP_K and
 * PRM_THRESHOLD each distinct correct response of the other prompts is scored once by the pinned
 * PRM with the spec's aggregation (a correct answer without any step cannot be scored and gets 0,
 * the lowest score); then the selection rule per prompt (on distinct responses only under
 * selection.distinct), and under selection.balance_answers balanceAnswers over the slice. Under
 * selection.rationalize a prompt left with no verified candidate (unless unsolved_only holds it
 * back) is first sampled `samples_per_prompt` more times with its question hinted by the gold
 * answer (seed deriveSeed(seed, 'rationalize', i)); the hinted samples are verified, checked and
 * scored under the plain question and join its candidates.
 */
export async function buildDataset(options: BuildDatasetOptions): Promise<DatasetResult> {
  const { spec, iteration, temperature, signal } = options;
  const scored = needsScores(spec.selection.rule);
  const { greedyFirst, unsolvedOnly } = spec.selection;
  const settings = {
    numSamples: spec.samplesPerPrompt,
    temperature,
    topP: spec.topP,
    maxNewTokens: spec.maxNewTokens,
    seed: deriveSeed(spec.seed, 'iteration', iteration),
    policy: options.source,
  };
  let done = 0;
  options.onProgress?.(0);
  const parts = await mapInOrder(chunks(options.items, options.promptsPerCall), CALLS_IN_FLIGHT, async (chunk) => {
    const prompts = chunk.map((item) => promptOf(item));
    // Temperature 0 draws the greedy answer whatever the seed.
    const greedy = greedyFirst || unsolvedOnly ? await sample(options.policy, prompts, { ...settings, numSamples: 1, temperature: 0 }, signal) : undefined;
    const solved = chunk.map((item, p) => greedy !== undefined && isCorrect(item, greedy[p]?.[0]?.text ?? ''));
    // Under greedy_first a prompt answered greedily is not sampled: its greedy answer is its candidate.
    const offersGreedy = chunk.map((_, p) => greedyFirst && solved[p] === true);
    const sampled = chunk.flatMap((_, p) => (offersGreedy[p] === true ? [] : [p]));
    const answers = sampled.length === 0 ? [] : await sample(options.policy, sampled.map((p) => prompts[p] as commonV1.Prompt), settings, signal);
    let next = 0;
    const drawn = chunk.map((_, p) => (offersGreedy[p] === true ? greedy?.[p] : answers[next++]) ?? []);
    const verify = (item: EvalItem, completions: readonly policyV1.Completion[], hinted: boolean) =>
      completions.map((c) => {
        const matched = isCorrect(item, c.text);
        return { completion: c, matched, correct: matched && passesChainCheck(spec.selection.chainCheck, item, c.text), hinted };
      });
    const verified = chunk.map((item, p) => verify(item, drawn[p] ?? [], false));
    const hintable = spec.selection.rationalize ? chunk.flatMap((_, p) => ((unsolvedOnly && solved[p] === true) || (verified[p] ?? []).some((s) => s.correct) ? [] : [p])) : [];
    if (hintable.length > 0) {
      const hintedPrompts = hintable.map((p) => {
        const item = chunk[p] as EvalItem;
        return { ...promptOf(item), question: withAnswerHint(item.question, item.answer) };
      });
      const hinted = await sample(options.policy, hintedPrompts, { ...settings, seed: deriveSeed(spec.seed, 'rationalize', iteration) }, signal);
      hintable.forEach((p, j) => (verified[p] ?? []).push(...verify(chunk[p] as EvalItem, hinted[j] ?? [], true)));
    }
    const targets = verified.flatMap((samples, p) =>
      scored && !(unsolvedOnly && solved[p] === true) ? [...new Set(samples.filter((s) => s.correct && splitSteps(s.completion.text).length > 0).map((s) => s.completion.text))].map((response) => ({ item: p, response })) : [],
    );
    const scores = targets.length === 0 ? [] : await scoreResponses(options, chunk, targets);
    const scoreOf = new Map(targets.map((t, i) => [`${t.item}/${t.response}`, scores[i] as number]));
    const perPrompt = chunk.map((item, p) => {
      const candidates = (verified[p] ?? []).map(
        (s): SampleCandidate => ({
          sampleIndex: s.completion.sampleIndex,
          text: s.completion.text,
          correct: s.correct,
          score: scoreOf.get(`${p}/${s.completion.text}`) ?? 0,
          ...(s.hinted ? { hinted: true } : {}),
        }),
      );
      // The policy's own matches: balance_answers ranks the prompts by how often it answers unaided.
      const matched = (verified[p] ?? []).filter((s) => s.matched && !s.hinted).length;
      const hintedMatched = (verified[p] ?? []).filter((s) => s.matched && s.hinted).length;
      const offered = unsolvedOnly && solved[p] === true ? [] : spec.selection.distinct ? distinctCandidates(candidates) : candidates;
      return {
        item,
        candidates,
        matched,
        hintedMatched,
        rationalized: hintable.includes(p),
        solved: solved[p] === true,
        temperature: offersGreedy[p] === true ? 0 : temperature,
        kept: selectSamples(spec, iteration, item.id, offered),
      };
    });
    done += chunk.length;
    options.onProgress?.(done);
    return perPrompt;
  });

  const prompts = parts.flat();
  const balanced = spec.selection.balanceAnswers ? balanceAnswers(prompts) : prompts.map((p) => p.kept);
  const kept = prompts.flatMap((p, i) => (balanced[i] ?? []).map((c) => ({ promptId: p.item.id, at: c.hinted === true ? temperature : p.temperature, candidate: c })));
  const records = kept.map(
    ({ promptId, at, candidate }): curationV1.DatasetRecord => ({
      promptId,
      response: candidate.text,
      prmScore: candidate.score,
      // sample() checked that every completion came from the pinned version.
      policy: options.source,
      temperature: at,
      sampleIndex: candidate.sampleIndex,
      hinted: candidate.hinted === true,
    }),
  );
  return {
    records,
    promptsTried: prompts.length,
    promptsWithCorrect: prompts.filter((p) => p.matched > 0).length,
    samplesGenerated: prompts.reduce((n, p) => n + p.candidates.length, 0),
    correctSamples: prompts.reduce((n, p) => n + p.matched + p.hintedMatched, 0),
    checkedSamples: prompts.reduce((n, p) => n + p.candidates.filter((c) => c.correct).length, 0),
    promptsSolvedGreedily: prompts.filter((p) => p.solved).length,
    promptsRationalized: prompts.filter((p) => p.rationalized).length,
    keptSamples: records.length,
    meanPrmScore: scored && records.length > 0 ? records.reduce((sum, r) => sum + r.prmScore, 0) / records.length : 0,
  };
}
