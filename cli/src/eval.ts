import { runV1 } from '@mstar/contracts';
import { createPolicyClient, remoteSampler } from '@mstar/policy-inference';
import { evaluate, runItems, type EvaluationResult, type RunSplit } from '@mstar/recipes';

export interface ServedEvalOptions {
  readonly address: string;
  readonly split: Exclude<RunSplit, 'pool'>;
  readonly size: number;
  /** Samples per prompt; 1 measures greedy accuracy only. */
  readonly k: number;
  readonly temperature: number;
  readonly worldSeed: number;
  /** The world's answer style: the served policy must have been trained to answer in it. */
  readonly answerStyle: 'short' | 'worked';
}

/** Greedy accuracy (and Pass@K when k > 1) of the policy a policy-inference service currently serves. */
export async function evaluateServed(options: ServedEvalOptions): Promise<EvaluationResult> {
  // Evaluation reads the answers only, so the gold chains' style does not matter.
  const world = {
    poolSize: 1,
    validationSize: options.size,
    inDomainTestSize: options.size,
    outOfDomainTestSize: options.size,
    worldSeed: options.worldSeed,
    chainStyle: runV1.ChainStyle.PLAIN,
    answerStyle: options.answerStyle === 'worked' ? runV1.AnswerStyle.WORKED : runV1.AnswerStyle.SHORT,
  };
  const client = createPolicyClient(options.address);
  try {
    return await evaluate({
      policy: { sampler: remoteSampler(client) },
      items: runItems(world, options.split),
      k: Math.max(1, options.k),
      temperature: options.temperature,
    });
  } finally {
    client.close();
  }
}
