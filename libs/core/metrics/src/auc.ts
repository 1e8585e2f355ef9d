import { MetricsError } from './errors.js';

/**
 * ROC AUC of scores against binary labels (true = positive), as the Mann-Whitney U statistic with
 * average ranks for tied scores: the probability that a random positive outscores a random
 * negative, ties counting one half. Undefined without both classes, so that is an error.
 */
export function auc(scores: readonly number[], labels: readonly boolean[]): number {
  if (scores.length !== labels.length) {
    throw new MetricsError(`auc needs as many labels as scores, got ${scores.length} scores and ${labels.length} labels`);
  }
  const positives = labels.filter(Boolean).length;
  const negatives = labels.length - positives;
  if (positives === 0 || negatives === 0) {
    throw new MetricsError(`auc needs at least one positive and one negative label, got ${positives} and ${negatives}`);
  }
  const order = scores.map((score, index) => {
    if (!Number.isFinite(score)) throw new MetricsError(`auc needs finite scores, got ${score} at index ${index}`);
    return { score, index };
  });
  order.sort((a, b) => a.score - b.score);
  let positiveRankSum = 0;
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && order[j + 1]?.score === order[i]?.score) j++;
    // Ranks are 1-based; a tied group of positions i..j all get the mean rank.
    const averageRank = (i + j) / 2 + 1;
    for (let t = i; t <= j; t++) {
      if (labels[order[t]?.index ?? -1]) positiveRankSum += averageRank;
    }
    i = j + 1;
  }
  const u = positiveRankSum - (positives * (positives + 1)) / 2;
  return u / (positives * negatives);
}
