import { InvalidArgumentError } from '@mstar/errors';
import type { Feeds, LoadedModel, Outputs, Session, SessionPool, ValueInfo } from '@mstar/runtime';

/** The three graphs of a vision-language model in the transformers.js layout. */
export type GraphName = 'vision' | 'embed' | 'decoder';

/** Sizes the loop needs to build KV-cache feeds, read from the decoder's input metadata. */
export interface DecoderLayout {
  readonly layers: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly hidden: number;
}

/**
 * Where the graphs run: in-thread sessions, the worker pool, or a test double. `run` may detach
 * the feed arrays (the pool transfers them), so callers never reuse a feed after passing it.
 */
export interface GenerationRunner {
  readonly layout: DecoderLayout;
  run(graph: GraphName, feeds: Feeds, outputNames?: readonly string[]): Promise<Outputs>;
}

const PAST_KEY = /^past_key_values\.(\d+)\.key$/;

/**
 * Reads the cache layout from `past_key_values.N.key` [batch, kv_heads, past, head_dim] and
 * `inputs_embeds` [batch, seq, hidden]; kv_heads, head_dim and hidden must be fixed sizes.
 */
export function decoderLayout(inputs: readonly ValueInfo[]): DecoderLayout {
  const byName = new Map(inputs.map((i) => [i.name, i]));
  const fixed = (name: string, axis: number): number => {
    const dim = byName.get(name)?.dims[axis];
    if (typeof dim !== 'number' || dim <= 0) {
      throw new InvalidArgumentError(`decoder input '${name}' must have a fixed size on axis ${axis}, has ${JSON.stringify(byName.get(name)?.dims)}`, { field: 'decoder' });
    }
    return dim;
  };
  const layerIds = inputs.map((i) => PAST_KEY.exec(i.name)?.[1]).filter((m): m is string => m !== undefined).map(Number);
  const layers = layerIds.length;
  if (layers === 0) throw new InvalidArgumentError('decoder has no past_key_values.N.key inputs; a KV-cache decoder (decoder_model_merged) is needed', { field: 'decoder' });
  for (let l = 0; l < layers; l++) {
    if (!byName.has(`past_key_values.${l}.key`) || !byName.has(`past_key_values.${l}.value`)) {
      throw new InvalidArgumentError(`decoder lacks past_key_values.${l}.key/value (layers must be numbered 0..${layers - 1})`, { field: 'decoder' });
    }
  }
  for (const name of ['attention_mask', 'position_ids']) {
    if (!byName.has(name)) throw new InvalidArgumentError(`decoder lacks the input '${name}'`, { field: 'decoder' });
  }
  return { layers, kvHeads: fixed('past_key_values.0.key', 1), headDim: fixed('past_key_values.0.key', 3), hidden: fixed('inputs_embeds', 2) };
}

function missingGraph(graph: GraphName): never {
  throw new InvalidArgumentError(`no '${graph}' graph was given to the runner, but the request needs it (a prompt with pixelValues)`, { field: graph });
}

/** Runs on in-thread sessions (tests, tools; a service should use the pool to keep its event loop free). */
export function sessionRunner(sessions: { decoder: Session; embed: Session; vision?: Session }): GenerationRunner {
  return {
    layout: decoderLayout(sessions.decoder.inputs),
    run: (graph, feeds, outputNames) => (sessions[graph] ?? missingGraph(graph)).run(feeds, outputNames),
  };
}

/** Runs on a @mstar/runtime SessionPool, with each graph loaded under its own key. */
export function poolRunner(pool: SessionPool, models: { decoder: LoadedModel; embed: LoadedModel; vision?: LoadedModel }): GenerationRunner {
  return {
    layout: decoderLayout(models.decoder.inputs),
    run: (graph, feeds, outputNames) => pool.run((models[graph] ?? missingGraph(graph)).key, feeds, outputNames),
  };
}
