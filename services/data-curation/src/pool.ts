import type { commonV1, runV1 } from '@mstar/contracts';
import { runItems, type EvalItem } from '@mstar/recipes';
import { encodePng } from '@mstar/world';

/**
 * The labelled pool of a run's world, cached by world seed and size: building it renders every
 * image (about 1.3 s for 4096 prompts here), and every iteration of a run needs the same pool.
 * A couple of entries cover the runs a service works on at the same time.
 */
export function createPoolCache(capacity = 2): (world: runV1.WorldSettings) => readonly EvalItem[] {
  const cache = new Map<string, readonly EvalItem[]>();
  return (world) => {
    const key = `${world.worldSeed}/${world.poolSize}`;
    let items = cache.get(key);
    if (items === undefined) {
      items = runItems(world, 'pool');
      if (cache.size >= capacity) cache.delete(cache.keys().next().value as string);
    } else {
      cache.delete(key);
    }
    cache.set(key, items);
    return items;
  };
}

const pngs = new WeakMap<EvalItem, Buffer>();

/** The Prompt of an item (PNG image), optionally with a response prefix the model must continue. */
export function promptOf(item: EvalItem, responsePrefix = ''): commonV1.Prompt {
  let image = pngs.get(item);
  if (image === undefined) {
    image = Buffer.from(encodePng(item.image));
    pngs.set(item, image);
  }
  return { promptId: item.id, image, question: item.question, responsePrefix };
}
